/* The MQTT transport (mqtt.h): libmosquitto on a thread of ours, events handed to the loop through a
 * queue and an eventfd.
 *
 * Why our own thread rather than mosquitto_loop_start(): libmosquitto's thread (mosquitto_loop_forever)
 * returns for good on a TLS error, a refused CONNACK (MQTT v5 reason codes come back as a protocol
 * error) and a few others, after which nothing would ever reconnect; and mosquitto_connect_async() still
 * resolves the host name on the caller's thread. Here the thread connects (blocking, which is fine: it is
 * not the door loop), runs mosquitto_loop() while the session lasts, and retries every failure with
 * the same backoff. mosquitto_threaded_set() makes publishes from the loop's thread only queue the
 * packet and wake this thread, which does all the socket I/O. */
#include "mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* After the DISCONNECT is queued at a clean stop, how long the thread has to write it and end before it
 * is told to stop at once, and then before a thread stuck in a blocking connect is cancelled. */
#define STOP_GRACE_MS 500
#define STOP_FORCE_MS 1500

enum event_kind {
    EV_CONNECTED,
    EV_DISCONNECTED,
    EV_PUBLISHED,
    EV_MESSAGE,
};

struct event {
    struct event *next;
    enum event_kind kind;
    bool was_connected;         /* EV_DISCONNECTED */
    int mid;                    /* EV_PUBLISHED */
    int code;                   /* EV_PUBLISHED: reason code */
    int qos;
    bool retain;
    char *topic;
    void *payload;
    size_t len;
    char *response_topic;
    void *correlation;
    size_t correlation_len;
    char why[400];              /* EV_DISCONNECTED */
};

struct mqtt {
    char *host;
    int port;
    char *status_topic;
    char **subs;
    size_t n_subs;
    int keepalive_s;
    struct mosquitto *mosq;
    mosquitto_property *connect_props;
    struct mqtt_ops ops;
    void *userdata;
    int efd;
    pthread_t thread;
    bool thread_started;
    bool connected;             /* the loop's view */

    pthread_mutex_t lock;       /* everything below */
    pthread_cond_t cond;        /* an event was queued, or stopping changed */
    struct event *head, *tail;
    size_t queued_bytes;
    uint64_t dropped;
    bool stopping;              /* no more connect attempts */
    bool stop_now;              /* leave the session loop now */
    bool session_up;            /* thread's view: CONNACK success and not lost since */
    bool in_connect;            /* the thread is in a blocking connect (cancellable) */
    int refused_code;           /* CONNACK reason of the current attempt, 0 = none */
    int lost_code;              /* on_disconnect rc of the current session */
    char last_error[200];       /* libmosquitto's last error log line (TLS details) */
    unsigned backoff_s;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void lib_init(void)
{
    mosquitto_lib_init();
}

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* ---- the queue (both sides) ---- */

static void event_free(struct event *ev)
{
    if (!ev)
        return;
    free(ev->topic);
    free(ev->payload);
    free(ev->response_topic);
    free(ev->correlation);
    free(ev);
}

static void wake_loop(struct mqtt *m)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is near overflow: the loop is woken anyway. */
    if (write(m->efd, &one, sizeof(one)) < 0) {
    }
}

/* Takes ev; called with m->lock held. */
static void post_locked(struct mqtt *m, struct event *ev)
{
    if (m->tail)
        m->tail->next = ev;
    else
        m->head = ev;
    m->tail = ev;
    m->queued_bytes += ev->len;
    pthread_cond_broadcast(&m->cond);
}

static void post(struct mqtt *m, struct event *ev)
{
    pthread_mutex_lock(&m->lock);
    post_locked(m, ev);
    pthread_mutex_unlock(&m->lock);
    wake_loop(m);   /* outside the lock: the loop never waits on us */
}

static struct event *event_new(enum event_kind kind)
{
    struct event *ev = calloc(1, sizeof(*ev));
    if (ev)
        ev->kind = kind;
    return ev;
}

/* ---- libmosquitto callbacks (the session thread) ---- */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
    struct mqtt *m = obj;
    if (rc != 0) {
        pthread_mutex_lock(&m->lock);
        m->refused_code = rc;
        pthread_mutex_unlock(&m->lock);
        return;     /* libmosquitto closes the connection; the session loop reports it */
    }
    /* Birth and subscriptions first, from this thread, so that they precede anything the loop sends
     * once it hears of the connect. */
    mosquitto_publish_v5(mosq, NULL, m->status_topic, 6, "online", 1, true, NULL);
    /* Retain As Published: without it the broker clears the retain flag of a message it forwards live,
     * and a retained unlock published while we are subscribed would look like a live one. */
    if (m->n_subs)
        mosquitto_subscribe_multiple(mosq, NULL, (int)m->n_subs, m->subs, 1, MQTT_SUB_OPT_RETAIN_AS_PUBLISHED,
                                     NULL);
    struct event *ev = event_new(EV_CONNECTED);
    pthread_mutex_lock(&m->lock);
    m->session_up = true;
    m->backoff_s = MQTT_BACKOFF_MIN_S;
    m->lost_code = 0;
    if (ev)
        post_locked(m, ev);
    pthread_mutex_unlock(&m->lock);
    wake_loop(m);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
    struct mqtt *m = obj;
    pthread_mutex_lock(&m->lock);
    m->lost_code = rc;
    pthread_mutex_unlock(&m->lock);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason_code,
                       const mosquitto_property *props)
{
    struct mqtt *m = obj;
    struct event *ev = event_new(EV_PUBLISHED);
    if (!ev)
        return;     /* out of memory: the row is sent again at the next start */
    ev->mid = mid;
    ev->code = reason_code;
    post(m, ev);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct mqtt *m = obj;
    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    pthread_mutex_lock(&m->lock);
    bool full = m->queued_bytes + len > MQTT_QUEUE_MAX_BYTES;
    if (full)
        m->dropped++;
    pthread_mutex_unlock(&m->lock);
    if (full) {
        wake_loop(m);
        return;
    }
    struct event *ev = event_new(EV_MESSAGE);
    if (!ev)
        goto nomem;
    ev->topic = strdup(msg->topic);
    ev->len = len;
    ev->payload = malloc(len ? len : 1);
    if (!ev->topic || !ev->payload)
        goto nomem;
    if (len)
        memcpy(ev->payload, msg->payload, len);
    ev->qos = msg->qos;
    ev->retain = msg->retain;
    /* Both read functions allocate what they return (free() it). */
    mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &ev->response_topic, false);
    uint16_t clen = 0;
    if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &ev->correlation, &clen, false))
        ev->correlation_len = clen;
    post(m, ev);
    return;
nomem:
    event_free(ev);
    pthread_mutex_lock(&m->lock);
    m->dropped++;
    pthread_mutex_unlock(&m->lock);
    wake_loop(m);
}

/* libmosquitto's error lines say what TLS did not like; keep the last one for the disconnect report. */
static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    struct mqtt *m = obj;
    if (!(level & MOSQ_LOG_ERR) || !str)
        return;
    pthread_mutex_lock(&m->lock);
    snprintf(m->last_error, sizeof(m->last_error), "%s", str);
    pthread_mutex_unlock(&m->lock);
}

/* ---- the session thread ---- */

/* libmosquitto's texts are sentences ("The connection was lost."): without the final period they fit
 * in a log line. */
static const char *trim_period(char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        s[n - 1] = '\0';
    return s;
}

static const char *mosq_error_text(int rc, int saved_errno, char *buf, size_t size)
{
    if (rc == MOSQ_ERR_ERRNO)
        snprintf(buf, size, "%s", strerror(saved_errno));
    else
        snprintf(buf, size, "%s", mosquitto_strerror(rc));
    return trim_period(buf);
}

/* Reports the end of an attempt or a session; rc is what the connect or the session loop returned. */
static void report_down(struct mqtt *m, bool connecting, int rc, int saved_errno)
{
    struct event *ev = event_new(EV_DISCONNECTED);
    char base[160], text[128];
    pthread_mutex_lock(&m->lock);
    bool was_up = m->session_up;
    m->session_up = false;
    if (m->refused_code) {
        snprintf(text, sizeof(text), "%s", mosquitto_reason_string(m->refused_code));
        snprintf(base, sizeof(base), "refused by the broker: %s", trim_period(text));
    } else if (was_up && m->lost_code && m->lost_code != MOSQ_ERR_ERRNO) {
        snprintf(text, sizeof(text), "%s", mosquitto_strerror(m->lost_code));
        snprintf(base, sizeof(base), "connection lost: %s", trim_period(text));
    } else
        snprintf(base, sizeof(base), "%s%s", connecting ? "cannot connect: " : was_up ? "connection lost: " : "",
                 mosq_error_text(rc, saved_errno, text, sizeof(text)));
    if (ev) {
        ev->was_connected = was_up;
        if (m->last_error[0] && !was_up)
            snprintf(ev->why, sizeof(ev->why), "%s (%s)", base, m->last_error);
        else
            snprintf(ev->why, sizeof(ev->why), "%s", base);
        post_locked(m, ev);
    }
    m->refused_code = 0;
    m->lost_code = 0;
    m->last_error[0] = '\0';
    pthread_mutex_unlock(&m->lock);
    wake_loop(m);
}

/* Waits for the backoff (or a stop); the next wait is twice as long, up to MQTT_BACKOFF_MAX_S. */
static void backoff_wait(struct mqtt *m)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    pthread_mutex_lock(&m->lock);
    until.tv_sec += m->backoff_s;
    m->backoff_s = m->backoff_s * 2 > MQTT_BACKOFF_MAX_S ? MQTT_BACKOFF_MAX_S : m->backoff_s * 2;
    while (!m->stopping && pthread_cond_timedwait(&m->cond, &m->lock, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&m->lock);
}

static bool flag(struct mqtt *m, const bool *f)
{
    pthread_mutex_lock(&m->lock);
    bool v = *f;
    pthread_mutex_unlock(&m->lock);
    return v;
}

static void set_in_connect(struct mqtt *m, bool v)
{
    pthread_mutex_lock(&m->lock);
    m->in_connect = v;
    pthread_mutex_unlock(&m->lock);
}

static void *session_thread(void *arg)
{
    struct mqtt *m = arg;
    /* Cancelled only inside a blocking connect (DNS, TCP), at a clean stop that outlived its bound:
     * nowhere else can it hold a lock that the stop still needs. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
    bool first = true;
    while (!flag(m, &m->stopping)) {
        set_in_connect(m, true);
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
        errno = 0;
        int rc = first ? mosquitto_connect_bind_v5(m->mosq, m->host, m->port, m->keepalive_s, NULL,
                                                   m->connect_props)
                       : mosquitto_reconnect(m->mosq);
        int saved_errno = errno;
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
        set_in_connect(m, false);
        if (rc == MOSQ_ERR_INVAL && first) {
            /* The arguments were checked in mqtt_new(): not expected, but never spin. */
            report_down(m, true, rc, saved_errno);
            backoff_wait(m);
            continue;
        }
        first = false;
        if (rc != MOSQ_ERR_SUCCESS) {
            report_down(m, true, rc, saved_errno);
        } else {
            do {
                errno = 0;
                rc = mosquitto_loop(m->mosq, 1000, 1);
                saved_errno = errno;
            } while (rc == MOSQ_ERR_SUCCESS && !flag(m, &m->stop_now));
            if (flag(m, &m->stopping))
                break;
            report_down(m, false, rc, saved_errno);
        }
        backoff_wait(m);
    }
    return NULL;
}

/* ---- loop side ---- */

/* A file the TLS setup will read: it must open, and none of the `forbidden` mode bits may be set. The
 * client key speaks for the site on the broker: a key anyone on the board can read is refused (S_IROTH).
 * Its group may read it (Debian's convention: 0640 root:ssl-cert, the daemon's user in ssl-cert). */
static int check_readable(const char *what, const char *path, mode_t forbidden, char *err, size_t errlen)
{
    if (!path || !*path)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int r = -errno;
        snprintf(err, errlen, "[mqtt] %s: cannot read %s: %s", what, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return r;
    }
    close(fd);
    if (st.st_mode & forbidden) {
        snprintf(err, errlen, "[mqtt] %s: %s is readable by others (mode %04o): refusing to use it; chmod 600 it",
                 what, path, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* An encrypted client key would make OpenSSL ask for its pass phrase on the terminal: refuse instead. */
static int no_pass_phrase(char *buf, int size, int rwflag, void *userdata)
{
    return 0;
}

static int mosq_to_errno(int rc)
{
    switch (rc) {
    case MOSQ_ERR_SUCCESS:
        return 0;
    case MOSQ_ERR_NOMEM:
        return -ENOMEM;
    case MOSQ_ERR_NO_CONN:
        return -ENOTCONN;
    case MOSQ_ERR_INVAL:
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_QOS_NOT_SUPPORTED:
        return -EINVAL;
    case MOSQ_ERR_PAYLOAD_SIZE:
    case MOSQ_ERR_OVERSIZE_PACKET:
        return -EMSGSIZE;
    case MOSQ_ERR_ERRNO:
        return errno ? -errno : -EIO;
    default:
        return -EIO;
    }
}

int mqtt_new(const struct mqtt_params *p, const struct mqtt_ops *ops, void *userdata, struct mqtt **out,
             char *err, size_t errlen)
{
    *out = NULL;
    if (!p->host || !*p->host || !p->client_id || !*p->client_id || !p->status_topic || p->port <= 0 ||
        p->port > 65535 || p->keepalive_s < 5 || p->keepalive_s > 65535) {
        snprintf(err, errlen, "[mqtt]: missing or invalid host, port, client id or keepalive");
        return -EINVAL;
    }
    int r;
    if ((r = check_readable("tls_ca", p->tls_ca, 0, err, errlen)) < 0 ||
        (r = check_readable("tls_cert", p->tls_cert, 0, err, errlen)) < 0 ||
        (r = check_readable("tls_key", p->tls_key, S_IROTH, err, errlen)) < 0)
        return r;
    pthread_once(&lib_once, lib_init);

    struct mqtt *m = calloc(1, sizeof(*m));
    if (!m)
        goto nomem;
    m->efd = -1;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    m->ops = *ops;
    m->userdata = userdata;
    m->port = p->port;
    m->keepalive_s = p->keepalive_s;
    m->backoff_s = MQTT_BACKOFF_MIN_S;
    m->host = strdup(p->host);
    m->status_topic = strdup(p->status_topic);
    m->subs = calloc(p->n_subscriptions + 1, sizeof(*m->subs));
    if (!m->host || !m->status_topic || !m->subs)
        goto nomem;
    for (size_t i = 0; i < p->n_subscriptions; i++) {
        if (!(m->subs[i] = strdup(p->subscriptions[i])))
            goto nomem;
        m->n_subs = i + 1;
    }
    m->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m->efd < 0) {
        r = -errno;
        snprintf(err, errlen, "mqtt: eventfd: %s", strerror(errno));
        goto fail;
    }

    /* Clean start: the broker keeps nothing for us between sessions; what must survive an outage is
     * in the database outbox, and libmosquitto resends its own in-flight messages after a reconnect. */
    m->mosq = mosquitto_new(p->client_id, true, m);
    if (!m->mosq)
        goto nomem;
    int rc;
    if ((rc = mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5)) ||
        (rc = mosquitto_threaded_set(m->mosq, true))) {
        snprintf(err, errlen, "mqtt: %s", mosquitto_strerror(rc));
        r = mosq_to_errno(rc);
        goto fail;
    }
    if ((rc = mosquitto_will_set_v5(m->mosq, m->status_topic, 7, "offline", 1, true, NULL))) {
        snprintf(err, errlen, "mqtt: will on %s: %s", m->status_topic, mosquitto_strerror(rc));
        r = mosq_to_errno(rc);
        goto fail;
    }
    if (p->username && *p->username &&
        (rc = mosquitto_username_pw_set(m->mosq, p->username, p->password))) {
        snprintf(err, errlen, "[mqtt] username: %s", mosquitto_strerror(rc));
        r = mosq_to_errno(rc);
        goto fail;
    }
    if (p->tls_ca && *p->tls_ca &&
        (rc = mosquitto_tls_set(m->mosq, p->tls_ca, NULL, nonempty(p->tls_cert),
                                nonempty(p->tls_cert) ? nonempty(p->tls_key) : NULL, no_pass_phrase))) {
        snprintf(err, errlen, "[mqtt] tls: %s", mosquitto_strerror(rc));
        r = mosq_to_errno(rc);
        goto fail;
    }
    if ((rc = mosquitto_property_add_int32(&m->connect_props, MQTT_PROP_MAXIMUM_PACKET_SIZE,
                                           MQTT_MAX_PACKET_BYTES))) {
        r = mosq_to_errno(rc);
        snprintf(err, errlen, "mqtt: %s", mosquitto_strerror(rc));
        goto fail;
    }
    mosquitto_connect_v5_callback_set(m->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(m->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(m->mosq, on_publish);
    mosquitto_message_v5_callback_set(m->mosq, on_message);
    mosquitto_log_callback_set(m->mosq, on_log);
    *out = m;
    return 0;

nomem:
    r = -ENOMEM;
    snprintf(err, errlen, "mqtt: %s", strerror(ENOMEM));
fail:
    mqtt_free(m);
    return r;
}

int mqtt_start(struct mqtt *m)
{
    if (m->thread_started)
        return -EALREADY;
    int r = pthread_create(&m->thread, NULL, session_thread, m);
    if (r)
        return -r;
    pthread_setname_np(m->thread, "mqtt");
    m->thread_started = true;
    return 0;
}

int mqtt_fd(const struct mqtt *m)
{
    return m->efd;
}

bool mqtt_connected(const struct mqtt *m)
{
    return m->connected;
}

void mqtt_dispatch(struct mqtt *m)
{
    uint64_t n;
    if (read(m->efd, &n, sizeof(n)) < 0) {
        /* EAGAIN: nothing signalled, but the queue is looked at anyway */
    }
    pthread_mutex_lock(&m->lock);
    struct event *ev = m->head;
    m->head = m->tail = NULL;
    m->queued_bytes = 0;
    uint64_t dropped = m->dropped;
    m->dropped = 0;
    pthread_mutex_unlock(&m->lock);

    if (dropped && m->ops.dropped)
        m->ops.dropped(m->userdata, dropped);
    while (ev) {
        struct event *next = ev->next;
        switch (ev->kind) {
        case EV_CONNECTED:
            m->connected = true;
            if (m->ops.connected)
                m->ops.connected(m->userdata);
            break;
        case EV_DISCONNECTED:
            m->connected = false;
            if (m->ops.disconnected)
                m->ops.disconnected(m->userdata, ev->was_connected, ev->why);
            break;
        case EV_PUBLISHED:
            if (m->ops.published)
                m->ops.published(m->userdata, ev->mid, ev->code);
            break;
        case EV_MESSAGE: {
            if (!m->ops.message)
                break;
            struct mqtt_message msg = {
                .topic = ev->topic,
                .payload = ev->payload,
                .len = ev->len,
                .qos = ev->qos,
                .retain = ev->retain,
                .response_topic = ev->response_topic,
                .correlation = ev->correlation,
                .correlation_len = ev->correlation_len,
            };
            m->ops.message(m->userdata, &msg);
            break;
        }
        }
        event_free(ev);
        ev = next;
    }
}

static int publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                   const mosquitto_property *props, int *mid)
{
    if (len > INT32_MAX)
        return -EMSGSIZE;
    int local_mid = 0;
    int rc = mosquitto_publish_v5(m->mosq, &local_mid, topic, (int)len, payload, qos, retain, props);
    /* A QoS 1 message is queued before libmosquitto tries to send it: without a connection it stays
     * queued and goes out after the reconnect, so for the caller it was published. */
    if (rc == MOSQ_ERR_NO_CONN && qos > 0 && local_mid > 0)
        rc = MOSQ_ERR_SUCCESS;
    if (rc != MOSQ_ERR_SUCCESS)
        return mosq_to_errno(rc);
    if (mid)
        *mid = local_mid;
    return 0;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos, bool retain,
                 int *mid)
{
    return publish(m, topic, payload, len, qos, retain, NULL, mid);
}

int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len,
                       const void *correlation, size_t correlation_len, int *mid)
{
    mosquitto_property *props = NULL;
    if (correlation && correlation_len) {
        if (correlation_len > UINT16_MAX)
            return -EMSGSIZE;
        int rc = mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, correlation,
                                               (uint16_t)correlation_len);
        if (rc)
            return mosq_to_errno(rc);
    }
    int r = publish(m, topic, payload, len, 1, false, props, mid);
    mosquitto_property_free_all(&props);
    return r;
}

static struct timespec deadline_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* With m->lock held: is the PUBACK of mid in the queue? */
static bool acked_locked(struct mqtt *m, int mid)
{
    for (struct event *ev = m->head; ev; ev = ev->next)
        if (ev->kind == EV_PUBLISHED && ev->mid == mid)
            return true;
    return false;
}

static bool join_by(struct mqtt *m, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);      /* pthread_timedjoin_np measures CLOCK_REALTIME */
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_timedjoin_np(m->thread, NULL, &until) == 0;
}

int mqtt_stop(struct mqtt *m, int timeout_ms)
{
    if (!m->thread_started)
        return -ENOTCONN;
    pthread_mutex_lock(&m->lock);
    m->stopping = true;
    pthread_cond_broadcast(&m->cond);
    bool up = m->session_up;
    pthread_mutex_unlock(&m->lock);

    int result = -ENOTCONN;
    int mid = 0;
    if (up && publish(m, m->status_topic, "offline", 7, 1, true, NULL, &mid) == 0) {
        struct timespec until = deadline_in(timeout_ms);
        result = -ETIMEDOUT;
        pthread_mutex_lock(&m->lock);
        while (m->session_up && !acked_locked(m, mid))
            if (pthread_cond_timedwait(&m->cond, &m->lock, &until) == ETIMEDOUT)
                break;
        if (acked_locked(m, mid))
            result = 0;
        pthread_mutex_unlock(&m->lock);
    }
    /* A normal DISCONNECT: the broker discards the will ("offline" is retained already). */
    mosquitto_disconnect_v5(m->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL);
    if (!join_by(m, STOP_GRACE_MS)) {
        pthread_mutex_lock(&m->lock);
        m->stop_now = true;
        pthread_mutex_unlock(&m->lock);
        if (!join_by(m, STOP_FORCE_MS)) {
            /* Still in a blocking connect (a host name that does not resolve, a broker that does not
             * answer SYN): only there is it cancellable. */
            pthread_cancel(m->thread);
            pthread_join(m->thread, NULL);
        }
    }
    m->thread_started = false;
    m->connected = false;
    return result;
}

struct mqtt *mqtt_free(struct mqtt *m)
{
    if (!m)
        return NULL;
    if (m->thread_started)
        mqtt_stop(m, 0);
    if (m->mosq)
        mosquitto_destroy(m->mosq);
    mosquitto_property_free_all(&m->connect_props);
    struct event *ev = m->head;
    while (ev) {
        struct event *next = ev->next;
        event_free(ev);
        ev = next;
    }
    if (m->efd >= 0)
        close(m->efd);
    for (size_t i = 0; i < m->n_subs; i++)
        free(m->subs[i]);
    free(m->subs);
    free(m->host);
    free(m->status_topic);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
    return NULL;
}

int mqtt_read_password_file(const char *path, char *out, size_t size, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int r = -errno;
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        return r;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "%s is not a regular file", path);
        close(fd);
        return -EINVAL;
    }
    if (st.st_mode & (S_IRGRP | S_IROTH)) {
        snprintf(why, whylen, "%s is readable by %s (mode %04o): refusing to use it; chmod 600 it", path,
                 (st.st_mode & S_IROTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777));
        close(fd);
        return -EPERM;
    }
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof(buf));
    int read_errno = errno;
    close(fd);
    if (n < 0) {
        snprintf(why, whylen, "cannot read %s: %s", path, strerror(read_errno));
        return -read_errno;
    }
    size_t len = 0;
    while (len < (size_t)n && buf[len] != '\n' && buf[len] != '\r')
        len++;
    int r = 0;
    if (len == 0) {
        snprintf(why, whylen, "%s: the first line is empty", path);
        r = -EINVAL;
    } else if (len >= size || (len == (size_t)n && (size_t)n == sizeof(buf))) {
        snprintf(why, whylen, "%s: the password is too long", path);
        r = -EINVAL;
    } else {
        memcpy(out, buf, len);
        out[len] = '\0';
    }
    explicit_bzero(buf, sizeof(buf));
    return r;
}
