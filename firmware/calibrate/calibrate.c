/* Calibrates instruction counting: times loops of known instruction counts with SysTick and
 * prints the tick counts; tests compare ticks x (1e9 / systick_hz) with the known counts. */
#include <stdint.h>

#include "semihost.h"
#include "timer.h"

static void measure(uint32_t n)
{
    uint64_t t0;
    uint64_t t1;
    tp_timer_start();
    t0 = tp_timer_ticks();
    tp_timer_spin(n);
    t1 = tp_timer_ticks();
    tp_sh_puts("spin ");
    tp_sh_put_u32(n);
    tp_sh_puts(" ticks ");
    tp_sh_put_u32((uint32_t)(t1 - t0));
    tp_sh_puts("\n");
}

int main(void)
{
    measure(0u);
    measure(1000u);
    measure(100000u);
    measure(10000000u); /* 20M instructions: the 24-bit counter wraps at least once */
    return 0;
}
