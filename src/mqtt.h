/* The MQTT transport: one MQTT v5 session over libmosquitto, kept up on a thread of its own, with a
 * clean hand-off to the daemon's event loop.
 *
 * The thread owns everything that can block: DNS, the TCP connect, the TLS handshake, reconnecting with
 * backoff (1 s doubling to 60 s, for every kind of failure: a broker that is down, refuses us, or fails
 * TLS is retried for ever). libmosquitto's callbacks run on that thread and only copy what they get into
 * a mutex-protected queue and write an eventfd; the loop watches mqtt_fd() and calls mqtt_dispatch(),
 * which runs the mqtt_ops callbacks on the loop's thread. Publishing is safe from the loop's thread at
 * any time (libmosquitto queues the packet and wakes its thread).
 *
 * Every session: the will is "offline" on the status topic (retained, QoS 1); on every connect the
 * birth "online" (retained, QoS 1) is published and every subscription made again (QoS 1, Retain As
 * Published: mqtt_message.retain is the publisher's flag even for a message sent live), before
 * ops->connected runs. Library code: returns negative errno, never logs (events carry a text). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reconnect delay: 1, 2, 4, 4, ... s. Capped low so that the outbox starts draining within seconds of
 * the broker's return (a failed attempt costs one TCP connect); a network of a few dozen sites
 * retrying every 4 s is nothing for a broker. */
#define MQTT_BACKOFF_MIN_S 1
#define MQTT_BACKOFF_MAX_S 4
/* Incoming packets larger than this are refused by the broker for us (MQTT v5 Maximum Packet Size):
 * twice the largest payload we accept (a sync batch, SYNC_MAX_BYTES), so a payload over the limit but
 * under this still arrives and is rejected with a reason, and nothing huge is ever buffered. */
#define MQTT_MAX_PACKET_BYTES (16u * 1024u * 1024u)
/* Incoming messages waiting for the loop beyond this many bytes are dropped (and counted). */
#define MQTT_QUEUE_MAX_BYTES (64u * 1024u * 1024u)

struct mqtt;

struct mqtt_params {
    const char *host;
    int port;
    const char *client_id;
    const char *username;               /* NULL or "": anonymous */
    const char *password;               /* NULL: none (copied; the caller may wipe its own copy) */
    const char *tls_ca;                 /* NULL or "": no TLS */
    const char *tls_cert, *tls_key;     /* client certificate (both or neither) */
    int keepalive_s;
    const char *status_topic;           /* will "offline", birth "online" */
    const char *const *subscriptions;   /* topic filters, subscribed at QoS 1 on every connect */
    size_t n_subscriptions;
};

/* An incoming message; every pointer is valid during the callback only. */
struct mqtt_message {
    const char *topic;
    const void *payload;                /* not NUL-terminated */
    size_t len;
    int qos;
    bool retain;
    const char *response_topic;         /* MQTT v5 Response Topic; NULL = none */
    const void *correlation;            /* MQTT v5 Correlation Data; NULL = none */
    size_t correlation_len;
};

struct mqtt_ops {
    /* The session is up: birth published, subscriptions made. */
    void (*connected)(void *userdata);
    /* A session ended (lost, refused) or a connect attempt failed; the thread retries after its backoff.
     * was_connected: a session had been up. why: one line for the log. */
    void (*disconnected)(void *userdata, bool was_connected, const char *why);
    /* The broker acknowledged a QoS 1 publish (PUBACK). reason_code: MQTT v5 reason, >= 0x80 a refusal
     * (the message is gone either way: libmosquitto does not send it again). */
    void (*published)(void *userdata, int mid, int reason_code);
    void (*message)(void *userdata, const struct mqtt_message *msg);
    /* Incoming messages dropped since the last call because the queue was over MQTT_QUEUE_MAX_BYTES. */
    void (*dropped)(void *userdata, uint64_t count);
};

/* Checks and copies everything (files of TLS are checked readable now, so that a mistake is a start
 * error rather than an endless retry). Starts nothing. 0, or a negative errno with a line in err. */
int mqtt_new(const struct mqtt_params *p, const struct mqtt_ops *ops, void *userdata, struct mqtt **out,
             char *err, size_t errlen);
/* Starts the thread, which connects in the background: never fails because the broker is away. */
int mqtt_start(struct mqtt *m);
/* The eventfd to watch for EPOLLIN; then call mqtt_dispatch(). */
int mqtt_fd(const struct mqtt *m);
/* Runs the callbacks of everything the thread has queued, in order. */
void mqtt_dispatch(struct mqtt *m);
/* As the loop knows it: between ops->connected and ops->disconnected. */
bool mqtt_connected(const struct mqtt *m);

/* Publishes; *mid (may be NULL) is the message id its PUBACK will carry. A QoS 1 message published while
 * the connection is down is kept by libmosquitto and sent after the reconnect (returns 0).
 * -ENOTCONN (QoS 0, not connected), -EMSGSIZE, -EINVAL, -ENOMEM, -EIO. */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                 int *mid);
/* A reply: QoS 1, not retained, with the request's correlation data (NULL/0: none). */
int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       const void *correlation, size_t correlation_len, int *mid);

/* Clean stop: when a session is up, publishes "offline" (retained) on the status topic and waits for
 * its PUBACK at most timeout_ms; then disconnects (so the broker drops the will) and ends the thread
 * (cancelled if a blocking connect outlives the bound). Events still queued stay for mqtt_dispatch().
 * Returns 0 if "offline" was acknowledged, -ENOTCONN if no session was up, -ETIMEDOUT. */
int mqtt_stop(struct mqtt *m, int timeout_ms);
struct mqtt *mqtt_free(struct mqtt *m);     /* stops if needed; accepts NULL; returns NULL */

/* Reads the password: the file's first line without its line ending. Refuses (-EPERM) a file that its
 * group or others may read; -errno if it cannot be read; -EINVAL if empty or too long. why: one line. */
int mqtt_read_password_file(const char *path, char *out, size_t size, char *why, size_t whylen);
