/* The door state machine. Every output that goes on has a deadline at which it goes off again, so
 * one timer following door_next_deadline() is all the caller needs. */
#include "door.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define NO_DEADLINE UINT64_MAX
#define DOOR_OUTPUT_COUNT (DOOR_OUTPUT_BUZZER + 1)

struct door {
    char name[ID_MAX];
    struct door_params params;
    const struct door_ops *ops;
    void *userdata;

    enum door_state state;
    uint64_t state_since;
    bool output_on[DOOR_OUTPUT_COUNT];
    uint64_t output_off_at[DOOR_OUTPUT_COUNT];
    uint64_t held_open_at;          /* only pending in DOOR_OPEN */
};

const char *door_state_name(enum door_state s)
{
    switch (s) {
    case DOOR_LOCKED:
        return "locked";
    case DOOR_UNLOCKED:
        return "unlocked";
    case DOOR_OPEN:
        return "open";
    case DOOR_HELD_OPEN:
        return "held_open";
    case DOOR_FORCED:
        return "forced";
    }
    return "unknown";
}

void door_params_defaults(struct door_params *p)
{
    *p = (struct door_params){
        .unlock_ms = 5000,
        .held_open_s = 30,
        .has_contact = false,
        .grant_led_ms = 0,
        .deny_led_ms = 2000,
        .short_beep_ms = 100,
        .long_beep_ms = 800,
    };
}

static void output_set(struct door *d, enum door_output output, bool on)
{
    if (!on)
        d->output_off_at[output] = NO_DEADLINE;
    if (d->output_on[output] == on)
        return;
    d->output_on[output] = on;
    d->ops->set_output(d->userdata, output, on);
}

/* On until `until`; a later pulse replaces the deadline of an earlier one. */
static void output_pulse(struct door *d, enum door_output output, uint64_t until)
{
    output_set(d, output, true);
    d->output_off_at[output] = until;
}

static void drive_everything_off(struct door *d)
{
    for (int o = 0; o < DOOR_OUTPUT_COUNT; o++) {
        d->output_on[o] = false;
        d->output_off_at[o] = NO_DEADLINE;
        d->ops->set_output(d->userdata, (enum door_output)o, false);
    }
}

/* Entry actions live here so that every way into a state leaves the outputs the same. */
static void door_enter_state(struct door *d, enum door_state to, const char *cause, uint64_t now_ms)
{
    enum door_state from = d->state;
    if (from == to)
        return;

    switch (to) {
    case DOOR_LOCKED:
        output_set(d, DOOR_OUTPUT_RELAY, false);
        d->held_open_at = NO_DEADLINE;
        break;
    case DOOR_UNLOCKED:
        break;
    case DOOR_OPEN:
        d->held_open_at = now_ms + (uint64_t)d->params.held_open_s * 1000u;
        break;
    case DOOR_HELD_OPEN:
    case DOOR_FORCED:
        d->held_open_at = NO_DEADLINE;
        break;
    }

    d->state = to;
    d->state_since = now_ms;
    d->ops->state_changed(d->userdata, from, to, cause);
}

struct door *door_new(const char *name, const struct door_params *params, const struct door_ops *ops,
                      void *userdata)
{
    if (!name || !params || !ops || !ops->set_output || !ops->state_changed || params->unlock_ms <= 0 ||
        (params->has_contact && params->held_open_s <= 0) || params->grant_led_ms < 0 ||
        params->deny_led_ms < 0 || params->short_beep_ms < 0 || params->long_beep_ms < 0) {
        errno = EINVAL;
        return NULL;
    }
    if (strlen(name) >= ID_MAX) {
        errno = ENAMETOOLONG;
        return NULL;
    }

    struct door *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    strcpy(d->name, name);
    d->params = *params;
    if (d->params.grant_led_ms == 0)
        d->params.grant_led_ms = d->params.unlock_ms;
    d->ops = ops;
    d->userdata = userdata;
    d->state = DOOR_LOCKED;
    d->held_open_at = NO_DEADLINE;
    drive_everything_off(d);
    return d;
}

struct door *door_free(struct door *d)
{
    if (!d)
        return NULL;
    door_make_safe(d);
    free(d);
    return NULL;
}

static void door_unlock(struct door *d, uint64_t now_ms, const char *cause)
{
    output_pulse(d, DOOR_OUTPUT_RELAY, now_ms + (uint64_t)d->params.unlock_ms);
    /* Open, held open or forced: the relay is re-energised so the door can be pushed again, but the
     * state is about the door leaf, which is still open. */
    if (d->state == DOOR_LOCKED)
        door_enter_state(d, DOOR_UNLOCKED, cause, now_ms);
}

void door_grant(struct door *d, uint64_t now_ms)
{
    door_unlock(d, now_ms, "grant");
    output_set(d, DOOR_OUTPUT_LED_RED, false);
    output_pulse(d, DOOR_OUTPUT_LED_GREEN, now_ms + (uint64_t)d->params.grant_led_ms);
    output_pulse(d, DOOR_OUTPUT_BUZZER, now_ms + (uint64_t)d->params.short_beep_ms);
}

void door_deny(struct door *d, uint64_t now_ms)
{
    output_set(d, DOOR_OUTPUT_LED_GREEN, false);
    output_pulse(d, DOOR_OUTPUT_LED_RED, now_ms + (uint64_t)d->params.deny_led_ms);
    output_pulse(d, DOOR_OUTPUT_BUZZER, now_ms + (uint64_t)d->params.long_beep_ms);
}

void door_exit_button(struct door *d, bool pressed, uint64_t now_ms)
{
    /* Only the press counts: a button held down must not keep the door unlocked forever. */
    if (pressed)
        door_unlock(d, now_ms, "exit_button");
}

void door_contact(struct door *d, bool open, uint64_t now_ms)
{
    /* Without a wired contact the input cannot be trusted to exist: ignore it entirely. */
    if (!d->params.has_contact)
        return;

    switch (d->state) {
    case DOOR_LOCKED:
        if (open)
            door_enter_state(d, DOOR_FORCED, "contact_open", now_ms);
        break;
    case DOOR_UNLOCKED:
        if (open)
            door_enter_state(d, DOOR_OPEN, "contact_open", now_ms);
        break;
    case DOOR_OPEN:
    case DOOR_HELD_OPEN:
    case DOOR_FORCED:
        if (!open)
            door_enter_state(d, DOOR_LOCKED, "contact_closed", now_ms);
        break;
    }
}

uint64_t door_next_deadline(const struct door *d)
{
    uint64_t next = d->held_open_at;
    for (int o = 0; o < DOOR_OUTPUT_COUNT; o++)
        if (d->output_off_at[o] < next)
            next = d->output_off_at[o];
    return next;
}

static void run_deadline(struct door *d, uint64_t deadline, uint64_t now_ms)
{
    if (d->held_open_at == deadline) {
        d->held_open_at = NO_DEADLINE;
        if (d->state == DOOR_OPEN)
            door_enter_state(d, DOOR_HELD_OPEN, "held_open_timeout", now_ms);
        return;
    }
    for (int o = 0; o < DOOR_OUTPUT_COUNT; o++) {
        if (d->output_off_at[o] != deadline)
            continue;
        if (o == DOOR_OUTPUT_RELAY && d->state == DOOR_UNLOCKED)
            door_enter_state(d, DOOR_LOCKED, "timeout", now_ms);   /* turns the relay off */
        else
            output_set(d, (enum door_output)o, false);
        return;
    }
}

void door_tick(struct door *d, uint64_t now_ms)
{
    /* Earliest first, so that a late tick replays events in the order they were due. */
    for (;;) {
        uint64_t next = door_next_deadline(d);
        if (next == NO_DEADLINE || next > now_ms)
            return;
        run_deadline(d, next, now_ms);
    }
}

void door_make_safe(struct door *d)
{
    if (!d)
        return;
    drive_everything_off(d);
    d->held_open_at = NO_DEADLINE;
}

enum door_state door_state(const struct door *d)
{
    return d->state;
}

uint64_t door_state_since(const struct door *d)
{
    return d->state_since;
}

bool door_relay_on(const struct door *d)
{
    return d->output_on[DOOR_OUTPUT_RELAY];
}

const char *door_name(const struct door *d)
{
    return d->name;
}
