/* The simulated hardware's input, shared by gpio_sim.c and reader_sim.c: a named pipe read line by line.
 *
 * The FIFO is created (mode 0600) if missing. It is opened for reading without blocking and, through a
 * second descriptor, for writing too: while that writer is open the read side never sees end-of-file or
 * EPOLLHUP when the external writers (echo, a test script) come and go, so the loop does not spin. */
#pragma once
#include <stdbool.h>

#define SIM_FIFO_LINE_MAX 255
#define SIM_FIFO_READ_MAX 512

struct sim_fifo;

/* 0 or a negative errno; -EEXIST when the path exists and is not a FIFO. */
int sim_fifo_open(const char *path, struct sim_fifo **out);
struct sim_fifo *sim_fifo_close(struct sim_fifo *f);   /* accepts NULL; returns NULL; keeps the FIFO file */
int sim_fifo_fd(const struct sim_fifo *f);

/* One complete line, trimmed of surrounding white space and never empty; or, with too_long, a line
 * longer than SIM_FIFO_LINE_MAX that was dropped (line is then NULL). */
typedef void (*sim_fifo_line_cb)(const char *line, bool too_long, void *userdata);
/* Reads what is pending, at most SIM_FIFO_READ_MAX bytes per call, and calls cb once per complete line.
 * The bound keeps one busy FIFO from holding the loop: the rest stays readable (the loop is
 * level-triggered) and is read at the next turn, after the other sources. A partial line (no newline
 * yet) is kept until the rest arrives. 0 or a negative errno. */
int sim_fifo_read_lines(struct sim_fifo *f, sim_fifo_line_cb cb, void *userdata);
