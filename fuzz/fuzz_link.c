/* Everything an MQTT message can reach in the daemon (src/link.c; docs/mqtt.md): the topic dispatch (site
 * and network sync, booking requests with or without a response topic, P/S/door/D/unlock for any D, topics
 * that are not ours), the retain flag, the size limits, then the handlers down to the database, the replies
 * and acknowledgements, and the retained state published after a change (occupancy, resource states, Home
 * Assistant discovery, with whatever names a sync batch brought).
 *
 * The real link runs over a stub of the transport (mqtt.h, defined here, so src/mqtt.c is not linked in): the
 * link is connected as far as it knows, its publishes are checked and dropped, and each input is one message
 * delivered through the transport's message callback, as mqtt_dispatch() delivers it. A fresh link and a
 * fresh copy of the site database for every input.
 *
 * Input: a first byte of flags (bit 0: retained; bits 1-3: the topic: 0 P/S/sync, 1 the network sync topic,
 * 2 P/S/booking/request, 3 the same with a response topic, 4 P/S/door/entrance/unlock, 5 P/S/door/D/unlock,
 * 6-7 any topic; bit 4: correlation data), then for 3, 5, 6 and 7 a line (the response topic, D, the topic),
 * then the payload. Topics and response topics that libmosquitto would not deliver (not valid UTF-8) are
 * skipped.
 *
 * Checked: every publish has a valid topic without wildcards and a JSON payload (or a retained clearing, or
 * the status words); every log line is one line; an unlock is handed over only for a configured door, a
 * live message, with a valid "by". */
#include <errno.h>
#include <jansson.h>
#include <mosquitto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "link.h"
#include "loop.h"
#include "mqtt.h"

/* ---- the transport stub ---- */

struct mqtt {
    struct mqtt_ops ops;
    void *userdata;
    int fd;
    int next_mid;
};

static struct mqtt *current;

int mqtt_new(const struct mqtt_params *p, const struct mqtt_ops *ops, void *userdata, struct mqtt **out,
             char *err, size_t errlen)
{
    FUZZ_CHECK(p->host && p->host[0] && p->status_topic && p->n_subscriptions >= 3);
    for (size_t i = 0; i < p->n_subscriptions; i++)
        FUZZ_CHECK(mosquitto_sub_topic_check(p->subscriptions[i]) == MOSQ_ERR_SUCCESS);
    struct mqtt *m = calloc(1, sizeof *m);
    FUZZ_CHECK(m != NULL);
    m->ops = *ops;
    m->userdata = userdata;
    m->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    FUZZ_CHECK(m->fd >= 0);
    *out = current = m;
    return 0;
}

int mqtt_start(struct mqtt *m)
{
    return 0;
}

int mqtt_fd(const struct mqtt *m)
{
    return m->fd;
}

void mqtt_dispatch(struct mqtt *m)
{
}

bool mqtt_connected(const struct mqtt *m)
{
    return true;
}

static size_t publishes;

static void check_publish(const char *topic, const void *payload, size_t len, bool retain)
{
    FUZZ_CHECK(mosquitto_pub_topic_check(topic) == MOSQ_ERR_SUCCESS);
    FUZZ_CHECK(mosquitto_validate_utf8(topic, (int)strlen(topic)) == MOSQ_ERR_SUCCESS);
    publishes++;
    if (len == 0) {
        FUZZ_CHECK(retain);     /* only a retained clearing is empty */
        return;
    }
    if ((len == 6 && !memcmp(payload, "online", 6)) || (len == 7 && !memcmp(payload, "offline", 7)))
        return;
    json_error_t e;
    json_t *j = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fprintf(stderr, "not JSON on %s: %.*s (%s)\n", topic, (int)len, (const char *)payload, e.text);
    FUZZ_CHECK(j != NULL && json_is_object(j));
    json_decref(j);
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                 int *mid)
{
    check_publish(topic, payload, len, retain);
    if (mid)
        *mid = ++m->next_mid;
    return 0;
}

int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       const void *correlation, size_t correlation_len, int *mid)
{
    check_publish(topic, payload, len, false);
    if (mid)
        *mid = ++m->next_mid;
    return 0;
}

int mqtt_stop(struct mqtt *m, int timeout_ms)
{
    return -ENOTCONN;
}

struct mqtt *mqtt_free(struct mqtt *m)
{
    if (m) {
        close(m->fd);
        free(m);
    }
    current = NULL;
    return NULL;
}

int mqtt_read_password_file(const char *path, char *out, size_t size, char *why, size_t whylen)
{
    return -ENOENT;
}

/* ---- the daemon's side ---- */

static struct config cfg;
static int unlocks;
static bool message_retained;

static int64_t fixed_now(void *userdata)
{
    return FUZZ_NOW;
}

static void on_unlock(void *userdata, const char *door, const char *by)
{
    FUZZ_CHECK(config_find_door(&cfg, door) != NULL);
    FUZZ_CHECK(!message_retained);
    FUZZ_CHECK(by[0] && strlen(by) < ID_MAX);
    unlocks++;
}

static void on_log(void *userdata, int priority, const char *line)
{
    for (const unsigned char *p = (const unsigned char *)line; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p != 0x7f);
}

static void add_door(const char *name, const char *relay)
{
    struct door_config *d = &cfg.doors[cfg.n_doors++];
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->relay, sizeof d->relay, "%s", relay);
    d->unlock_ms = 5000;
    d->held_open_s = 30;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_set_timezone();
    mosquitto_lib_init();
    config_defaults(&cfg);
    snprintf(cfg.site_id, sizeof cfg.site_id, "florac");
    snprintf(cfg.site_name, sizeof cfg.site_name, "Telecentre Florac");
    snprintf(cfg.mqtt.host, sizeof cfg.mqtt.host, "broker.invalid");
    snprintf(cfg.mqtt.client_id, sizeof cfg.mqtt.client_id, "telecentred-florac");
    snprintf(cfg.mqtt.network_sync_topic, sizeof cfg.mqtt.network_sync_topic, "telecentre/network/sync");
    add_door("entrance", "GPIO17");
    add_door("back", "GPIO27");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    data++;
    size--;
    unsigned which = (flags >> 1) & 7;
    char topic[1024];
    const char *base = "telecentre/florac";
    char *line = NULL;
    if (which == 3 || which >= 5) {
        const uint8_t *head;
        size_t head_len;
        fuzz_split(&data, &size, '\n', &head, &head_len);
        line = fuzz_strndup(head, head_len);
        if (strlen(line) != head_len || mosquitto_validate_utf8(line, (int)head_len) != MOSQ_ERR_SUCCESS ||
            head_len > 512) {
            free(line);
            return 0;   /* libmosquitto would not deliver it */
        }
    }
    const char *response_topic = NULL;
    switch (which) {
    case 0:
        snprintf(topic, sizeof topic, "%s/sync", base);
        break;
    case 1:
        snprintf(topic, sizeof topic, "%s", cfg.mqtt.network_sync_topic);
        break;
    case 2:
        snprintf(topic, sizeof topic, "%s/booking/request", base);
        break;
    case 3:
        snprintf(topic, sizeof topic, "%s/booking/request", base);
        response_topic = line;
        break;
    case 4:
        snprintf(topic, sizeof topic, "%s/door/entrance/unlock", base);
        break;
    case 5:
        snprintf(topic, sizeof topic, "%s/door/%s/unlock", base, line);
        break;
    default:
        snprintf(topic, sizeof topic, "%s", line);
        break;
    }
    /* A broker delivers a message only on a valid topic name, to a subscriber whose filter matches; the
     * response topic must be a valid topic name too or the broker refuses the request. */
    if (mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
        (response_topic && mosquitto_pub_topic_check(response_topic) != MOSQ_ERR_SUCCESS)) {
        free(line);
        return 0;
    }

    struct store *st = fuzz_site_open();
    /* A loop per input: a removed source is freed by the loop's next turn, which never comes here. */
    struct loop *loop;
    FUZZ_CHECK(loop_new(&loop) == 0);
    struct clock clock = {.now = fixed_now};
    static const struct link_ops ops = {.unlock = on_unlock, .log = on_log};
    struct link *lk;
    char err[512];
    FUZZ_CHECK(link_new(&cfg, st, loop, &clock, &ops, NULL, &lk, err, sizeof err) == 0);
    FUZZ_CHECK(link_start(lk) == 0 && current != NULL);
    current->ops.connected(current->userdata);   /* what the transport does once the session is up */

    static const char correlation[] = "req-0001";
    message_retained = flags & 1;
    struct mqtt_message msg = {
        .topic = topic,
        .payload = data,
        .len = size,
        .qos = 1,
        .retain = message_retained,
        .response_topic = response_topic,
        .correlation = flags & 16 ? correlation : NULL,
        .correlation_len = flags & 16 ? sizeof correlation - 1 : 0,
    };
    unlocks = 0;
    current->ops.message(current->userdata, &msg);
    if (which != 4 && which != 5 && which < 6)
        FUZZ_CHECK(unlocks == 0);

    link_free(lk);
    loop_free(loop);
    fuzz_site_close(st);
    free(line);
    return 0;
}
