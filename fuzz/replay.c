/* The fuzz targets' main when libFuzzer is not linked in (gcc builds; ctest fuzz.NAME): runs the target once
 * on every file named, and on every file of every directory named (one level, in name order), as libFuzzer
 * does with -runs=0. So every build replays every seed and every input that ever crashed a target
 * (fuzz/regressions/): a crash, a sanitizer report or a broken FUZZ_CHECK fails the test.
 *   fuzz_NAME [DIR|FILE]... */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Optional in a target. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) < 0) {
        fclose(f);
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    /* Exactly the input's size, as libFuzzer gives it: a read past its end is a sanitizer report. */
    uint8_t *data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != size) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(data);
        fclose(f);
        return -1;
    }
    fclose(f);
    int r = LLVMFuzzerTestOneInput(data, size);
    free(data);
    if (r != 0 && r != -1) {
        fprintf(stderr, "replay: %s: the target returned %d\n", path, r);
        return -1;
    }
    return 0;
}

static int skip_dot(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    size_t inputs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (replay_file(argv[i]) < 0)
                return 1;
            inputs++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, skip_dot, alphasort);
        if (n < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        int failed = 0;
        for (int k = 0; k < n; k++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], names[k]->d_name);
            if (!failed && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                if (replay_file(path) < 0)
                    failed = 1;
                inputs++;
            }
            free(names[k]);
        }
        free(names);
        if (failed)
            return 1;
    }
    printf("replay: %zu input%s, no crash\n", inputs, inputs == 1 ? "" : "s");
    return 0;
}
