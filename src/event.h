/* The JSON payloads telecentred publishes (docs/mqtt.md is the reference). Pure functions of their
 * arguments: no store, no clock. Never a badge UID or a member's name in an event.
 * Functions returning char * give a malloc'd compact JSON string (free() it) or NULL with errno set. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "door.h"
#include "store.h"

/* "2026-11-23T08:02:11Z" (UTC) into buf (at least 21 bytes); returns buf. */
char *event_time(int64_t at, char *buf);

/* The body of an access event, without "seq" (the outbox adds it when it sends):
 * {"at","door","reader","direction","result","reason","member","booking","by"}; member/booking/by are
 * null when there is none ("by" is who asked for a remote unlock). */
char *event_access_json(const struct access_record *rec);

/* The body of an alarm event, without "seq": {"at","alarm","active","door","reader","detail"}; door,
 * reader and detail null when NULL/"". alarm: "forced", "held_open", "reader_offline", "fault". */
char *event_alarm_json(int64_t at, const char *alarm, bool active, const char *door, const char *reader,
                       const char *detail);

/* What goes on the wire for an outbox row: "{\"seq\":N," + body[1..] (or "{\"seq\":N}" for "{}"). */
char *event_with_seq(int64_t seq, const char *body);

/* Retained door state: {"state":"locked","since":"...Z"}. */
char *event_door_state_json(enum door_state state, int64_t since);
