/* The gpiod backend where this machine lets us test it: with no GPIO chip at all (these build machines),
 * opening the driver fails with -ENODEV rather than later with something obscure. Real lines (requests,
 * edges, debounce, the relay's levels) are tested on the kernel's gpio-sim inside the qemu VM rig, for
 * libgpiod 1.6 and 2.x. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#include <cmocka.h>

#include "gpio.h"

static void test_no_chip(void **state)
{
#ifndef TC_HAVE_GPIOD
    skip();
#else
    glob_t chips;
    int found = glob("/dev/gpiochip*", 0, NULL, &chips) == 0 && chips.gl_pathc > 0;
    globfree(&chips);
    if (found)
        skip();    /* a machine with GPIO: the VM rig's case */
    struct gpio *g = NULL;
    assert_int_equal(gpio_open(GPIO_DRIVER_GPIOD, NULL, NULL, NULL, &g), -ENODEV);
    assert_null(g);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_chip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
