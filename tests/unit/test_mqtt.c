/* The MQTT transport's checks that need no broker (the session itself is tested against a real
 * mosquitto in tests/integration/mqtt_session.sh): the password file rules, the Home Assistant node id,
 * and that a transport made for a broker that is not there starts, reports the failed connect through
 * its queue, and stops at once. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "clock.h"
#include "link.h"
#include "mqtt.h"

static char dir[] = "/tmp/test_mqtt.XXXXXX";

static int setup(void **state)
{
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void test_password_first_line(void **state)
{
    char pw[64], why[256];
    const char *p = write_file("pw1", "s3cret pass\nsecond line\n", 0600);
    assert_int_equal(mqtt_read_password_file(p, pw, sizeof pw, why, sizeof why), 0);
    assert_string_equal(pw, "s3cret pass");
    p = write_file("pw2", "crlf\r\n", 0400);
    assert_int_equal(mqtt_read_password_file(p, pw, sizeof pw, why, sizeof why), 0);
    assert_string_equal(pw, "crlf");
    p = write_file("pw3", "no newline", 0600);
    assert_int_equal(mqtt_read_password_file(p, pw, sizeof pw, why, sizeof why), 0);
    assert_string_equal(pw, "no newline");
}

static void test_password_refused(void **state)
{
    char pw[16], why[256];
    const char *p = write_file("g", "pw\n", 0640);
    assert_int_equal(mqtt_read_password_file(p, pw, sizeof pw, why, sizeof why), -EPERM);
    assert_non_null(strstr(why, "readable by its group"));
    p = write_file("o", "pw\n", 0604);
    assert_int_equal(mqtt_read_password_file(p, pw, sizeof pw, why, sizeof why), -EPERM);
    assert_non_null(strstr(why, "readable by others"));
    p = write_file("empty", "\nsecond\n", 0600);
    assert_int_equal(mqtt_read_password_file(p, pw, sizeof pw, why, sizeof why), -EINVAL);
    p = write_file("long", "0123456789abcdefXYZ\n", 0600);
    assert_int_equal(mqtt_read_password_file(p, pw, sizeof pw, why, sizeof why), -EINVAL);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    assert_int_equal(mqtt_read_password_file(missing, pw, sizeof pw, why, sizeof why), -ENOENT);
    assert_non_null(strstr(why, "cannot read"));
}

static void test_ha_node_id(void **state)
{
    char node[96];
    link_ha_node_id("florac", node, sizeof node);
    assert_string_equal(node, "telecentred_florac");
    link_ha_node_id("st-jean.du:gard", node, sizeof node);
    assert_string_equal(node, "telecentred_st-jean_du_gard");
}

struct seen {
    int connected, disconnected;
    char why[400];
};

static void on_connected(void *userdata)
{
    ((struct seen *)userdata)->connected++;
}

static void on_disconnected(void *userdata, bool was_connected, const char *why)
{
    struct seen *s = userdata;
    s->disconnected++;
    snprintf(s->why, sizeof s->why, "%s", why);
}

/* A loopback port with nobody listening: bound, never listened on, so connects are refused. */
static int refused_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, len), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

static void test_broker_away(void **state)
{
    int hold;
    int port = refused_port(&hold);
    struct seen seen = {0};
    const struct mqtt_ops ops = {.connected = on_connected, .disconnected = on_disconnected};
    const char *subs[] = {"t/s/sync"};
    struct mqtt_params p = {.host = "127.0.0.1", .port = port, .client_id = "test", .keepalive_s = 5,
                            .status_topic = "t/s/status", .subscriptions = subs, .n_subscriptions = 1};
    struct mqtt *m;
    char err[256];
    assert_int_equal(mqtt_new(&p, &ops, &seen, &m, err, sizeof err), 0);
    assert_int_equal(mqtt_start(m), 0);
    struct pollfd pfd = {.fd = mqtt_fd(m), .events = POLLIN};
    uint64_t deadline = clock_mono_ms() + 10000;
    while (!seen.disconnected && clock_mono_ms() < deadline) {
        poll(&pfd, 1, 100);
        mqtt_dispatch(m);
    }
    assert_int_equal(seen.disconnected, 1);
    assert_int_equal(seen.connected, 0);
    assert_non_null(strstr(seen.why, "cannot connect"));
    assert_false(mqtt_connected(m));
    /* QoS 0 needs a connection; QoS 1 is queued by libmosquitto for the reconnect. */
    int mid = 0;
    assert_int_equal(mqtt_publish(m, "t/s/x", "a", 1, 0, false, NULL), -ENOTCONN);
    assert_int_equal(mqtt_publish(m, "t/s/x", "a", 1, 1, false, &mid), 0);
    assert_true(mid > 0);
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(mqtt_stop(m, 2000), -ENOTCONN);
    assert_true(clock_mono_ms() - t0 < 2500);      /* in its backoff wait: stops at once */
    m = mqtt_free(m);
    close(hold);
}

static void test_bad_tls_file(void **state)
{
    const struct mqtt_ops ops = {0};
    struct mqtt_params p = {.host = "127.0.0.1", .port = 8883, .client_id = "test", .keepalive_s = 30,
                            .status_topic = "t/s/status", .tls_ca = "/nonexistent/ca.crt"};
    struct mqtt *m = NULL;
    char err[256];
    assert_int_equal(mqtt_new(&p, &ops, NULL, &m, err, sizeof err), -ENOENT);
    assert_null(m);
    assert_non_null(strstr(err, "tls_ca"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_first_line),
        cmocka_unit_test(test_password_refused),
        cmocka_unit_test(test_ha_node_id),
        cmocka_unit_test(test_broker_away),
        cmocka_unit_test(test_bad_tls_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
