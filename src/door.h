/* The door: an explicit state machine, pure, with time injected (monotonic milliseconds).
 * It drives outputs and reports transitions through callbacks; it never reads a clock or touches
 * hardware itself, so tests run it with a hand-set clock.
 *
 * The relay's safe state is "off" (fail-secure lock: de-energised = locked). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

enum door_state {
    DOOR_LOCKED,       /* relay off, door closed (or no contact wired) */
    DOOR_UNLOCKED,     /* relay on for unlock_ms after a grant or the exit button; door still closed */
    DOOR_OPEN,         /* door open after a grant or exit; relay stays on until unlock_ms ends */
    DOOR_HELD_OPEN,    /* open longer than held_open_s: alarm */
    DOOR_FORCED,       /* opened while locked with no grant and no exit button: alarm */
};
const char *door_state_name(enum door_state s);   /* "locked", "unlocked", "open", "held_open", "forced" */

enum door_output {
    DOOR_OUTPUT_RELAY,
    DOOR_OUTPUT_LED_GREEN,
    DOOR_OUTPUT_LED_RED,
    DOOR_OUTPUT_BUZZER,
};

struct door_ops {
    void (*set_output)(void *userdata, enum door_output output, bool on);
    /* every transition, with the event that caused it ("grant", "exit_button", "timeout", "contact_open",
     * "contact_closed", "held_open_timeout") */
    void (*state_changed)(void *userdata, enum door_state from, enum door_state to, const char *cause);
};

struct door_params {
    int unlock_ms;          /* relay pulse length */
    int held_open_s;        /* open this long -> held_open */
    bool has_contact;       /* without a contact the door only goes locked <-> unlocked */
    int grant_led_ms;       /* green LED after a grant; 0 (the default) = unlock_ms */
    int deny_led_ms;        /* red LED after a deny (default 2000) */
    int short_beep_ms;      /* on grant (default 100) */
    int long_beep_ms;       /* on deny (default 800) */
};
void door_params_defaults(struct door_params *p);

struct door;
/* Starts locked, every output driven off; NULL + errno (EINVAL for a missing name or ops, unlock_ms <= 0,
 * or held_open_s <= 0 with a contact). set_output is called only when an output changes, except in
 * door_new() and door_make_safe(), which drive every output off whatever the door believes. */
struct door *door_new(const char *name, const struct door_params *params, const struct door_ops *ops,
                      void *userdata);
struct door *door_free(struct door *d);   /* accepts NULL; leaves the relay safe; returns NULL */

void door_grant(struct door *d, uint64_t now_ms);        /* badge or remote grant: unlock, green, short beep */
void door_deny(struct door *d, uint64_t now_ms);         /* red LED, long beep; state unchanged */
void door_exit_button(struct door *d, bool pressed, uint64_t now_ms);  /* press unlocks */
void door_contact(struct door *d, bool open, uint64_t now_ms);
void door_tick(struct door *d, uint64_t now_ms);          /* runs every deadline that has passed */
uint64_t door_next_deadline(const struct door *d);        /* UINT64_MAX when nothing is pending */
/* Relay, LEDs, buzzer off and every deadline cleared (exit paths). The state is left as it is: no
 * transition is reported, since nothing happened at the door itself. */
void door_make_safe(struct door *d);

enum door_state door_state(const struct door *d);
uint64_t door_state_since(const struct door *d);          /* monotonic ms of the last transition */
bool door_relay_on(const struct door *d);
const char *door_name(const struct door *d);
