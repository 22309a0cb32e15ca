/* Shared by the fuzz targets (fuzz/fuzz_*.c; docs/reliability.md "Fuzzing").
 *
 * Each target is one libFuzzer entry point. With TELECENTRED_FUZZ (clang) it links libFuzzer's main and
 * explores; in every other build it links fuzz/replay.c, which runs the same entry point once on each file
 * of its corpus and regressions (ctest fuzz.NAME). So a target must be deterministic, carry no state from
 * one input to the next (or reset it), leak nothing, and be fast: thousands of inputs a second. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* libFuzzer's entry points (LLVMFuzzerInitialize is optional: replay.c calls it when a target has it). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Every target's "now": 2026-11-23T08:02:11Z, a Monday, 09:02 in Paris. Seeds with timestamps use it. */
#define FUZZ_NOW 1795420931

/* An invariant that holds in every build (assert() may be compiled out): a broken one aborts, which libFuzzer
 * reports as a crash with the input that did it. */
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

/* Sets the process timezone to Europe/Paris (daylight saving: the awkward case), UTC if it is not installed. */
void fuzz_set_timezone(void);

/* A private directory for this process (in /dev/shm when there is one: SQLite's syncs cost nothing there),
 * removed with its files at exit. */
const char *fuzz_tmpdir(void);

/* The database every store-backed target starts each input from, as a real SQLite file: members m-1 (Ana,
 * visible), m-2 (Ben, keyholder), m-3 (suspended), m-4 (membership ended), mgr-1 (manager); badges 04A1B2C3
 * (m-1), 04112233445566 (m-2), 0A0B0C0D (m-1, revoked); desks desk-1, desk-2, room room-1 (6 seats); bookings
 * b-1 (m-1 desk-1, in an hour), b-2 (m-2 desk-2, now), b-3 (cancelled); a closure on 2026-12-25; site sync
 * version 1. Made once, then copied afresh for an input whenever the one before committed anything, so that no
 * input sees another's changes. */
struct store *fuzz_site_open(void);         /* aborts if it cannot */
void fuzz_site_close(struct store *st);     /* done with it for this input (it may be reused if unchanged) */

/* Splits data at the first occurrence of sep: the part before goes to *head (len *head_len), the rest
 * stays in *data / *size. Without sep, everything goes to head. For targets that take several fields. */
void fuzz_split(const uint8_t **data, size_t *size, uint8_t sep, const uint8_t **head, size_t *head_len);
/* A NUL-terminated malloc'd copy (free it). */
char *fuzz_strndup(const uint8_t *data, size_t len);

/* A hash of everything a sync batch or a booking request can change (members, badges, resources, bookings,
 * closures, sync versions): equal before and after means "nothing changed". Aborts if the store fails. */
uint64_t fuzz_site_fingerprint(struct store *st);
/* True when s (NUL-terminated) is printable ASCII only: what we promise for text shown on one line. */
bool fuzz_is_printable(const char *s);
