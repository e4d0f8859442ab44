#include "timer.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#ifndef SYST_RELOAD
#define SYST_RELOAD 0x00FFFFFFu /* the full 24 bits; tests build with less to exercise wraps */
#endif

static volatile uint32_t tp_timer_wraps;

void tp_systick_handler(void)
{
    tp_timer_wraps++;
}

void tp_timer_start(void)
{
    SYST_CSR = 0u;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u;
    tp_timer_wraps = 0u;
    SYST_CSR = 0x7u; /* ENABLE | TICKINT | CLKSOURCE = processor clock */
    /* Writing CVR clears it; the reload happens on the next tick. Until then a read would see
     * 0 and look like a full period had passed. */
    while (SYST_CVR == 0u) {
    }
}

uint64_t tp_timer_ticks(void)
{
    uint32_t wraps;
    uint32_t value;
    do {
        wraps = tp_timer_wraps;
        value = SYST_CVR;
    } while (wraps != tp_timer_wraps);
    return (uint64_t)wraps * (SYST_RELOAD + 1u) + (SYST_RELOAD - value);
}

void tp_timer_spin(uint32_t n)
{
    if (n == 0u) {
        return;
    }
    /* Two instructions per iteration on every Thumb core. */
    /* GCC hands Thumb-1 inline assembly over in divided syntax; ask for unified. */
    __asm__ volatile(
        ".syntax unified\n"
        "1:\n\t"
        "subs %0, %0, #1\n\t"
        "bne 1b\n\t"
        : "+l"(n)
        :
        : "cc");
}
