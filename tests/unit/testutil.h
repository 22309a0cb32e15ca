/* Helpers shared by the unit tests that work on a database in a temporary directory. */
#pragma once

/* Removes the files in dir (one level) and dir itself; a missing dir is fine. */
void testutil_remove_dir(const char *dir);
/* Every row of every table of the database at path, as text, read through a second read-only
 * connection: what "the database is unchanged" means when compared before and after. malloc'd. */
char *testutil_db_dump(const char *path);
