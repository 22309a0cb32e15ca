/* Logging for the top layer only: library modules return negative errno and never log (the sim GPIO
 * backend prints output changes: printing is its purpose).
 * Lines go to stderr. When stderr is the journal (systemd's JOURNAL_STREAM names it), each line starts
 * with the syslog priority prefix "<N>" that journald files by; otherwise ("telecentred: warning: ...")
 * the priority is a word a person can read. */
#pragma once
#include <syslog.h>

void log_init(const char *ident, int max_priority);  /* LOG_INFO by default; LOG_DEBUG for -v */
void log_set_max_priority(int max_priority);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Text that quotes outside input (an unknown key, a parser's complaint), made safe for one log line and
 * for a JSON reply: every byte outside printable ASCII becomes '?', in place. Returns s. Library modules
 * use it too: it writes nothing. */
char *log_printable(char *s);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
