/* Log lines: the "<N>" priority prefix when stderr is the journal (JOURNAL_STREAM names it), a readable
 * word otherwise; priorities above the maximum are dropped. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* Runs fn with stderr sent to a temporary file and returns what was written. */
static char *capture(bool as_journal, void (*fn)(void))
{
    char path[] = "/tmp/tc-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    if (as_journal) {
        struct stat st;
        fstat(fd, &st);
        char value[64];
        snprintf(value, sizeof value, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", value, 1);
    } else {
        setenv("JOURNAL_STREAM", "1:2", 1);   /* some other stream: not ours */
    }
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    unsetenv("JOURNAL_STREAM");
    static char buf[4096];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void emit(void)
{
    log_init("tc-test", LOG_INFO);
    log_warn("door %s forced", "entrance");
    log_info("started");
    log_debug("tap 04A1B2C3");           /* above the maximum: dropped */
}

static void test_journal_gets_priority_prefixes(void **state)
{
    assert_string_equal(capture(true, emit), "<4>door entrance forced\n<6>started\n");
}

static void test_files_and_terminals_get_words(void **state)
{
    assert_string_equal(capture(false, emit), "tc-test: warning: door entrance forced\ntc-test: info: started\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_gets_priority_prefixes),
        cmocka_unit_test(test_files_and_terminals_get_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
