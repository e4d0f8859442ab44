/* Vector table and reset handler for every Cortex-M core in boards/.
 *
 * Reset: copy .data from flash, zero .bss, paint the stack (for the high-water mark), turn on
 * the FPU on hard-float builds, then call main() and leave through semihosting with its
 * return value. Faults print their name and exit with status 3, so a test sees them.
 * With TP_NO_SEMIHOSTING (real hardware, Renode) there is no host to exit to: the core sleeps.
 */
#include <stdint.h>

#include "semihost.h"
#include "startup.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_bottom, _stack_top;
extern int main(void);

void tp_reset_handler(void);
static void tp_nmi_handler(void);
static void tp_hardfault_handler(void);
void tp_other_handler(void);
/* timer.c provides the real one when it is linked in */
void tp_systick_handler(void) __attribute__((weak, alias("tp_other_handler")));

#ifdef TP_NO_SEMIHOSTING
static void tp_halt(int code)
{
    (void)code;
    for (;;) {
        __asm__ volatile("wfi");
    }
}
#define TP_REPORT(msg) ((void)0)
#else
#define tp_halt tp_sh_exit
#define TP_REPORT(msg) tp_sh_puts(msg)
#endif

#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

__attribute__((section(".vectors"), used)) void (*const tp_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_stack_top,
    tp_reset_handler,
    tp_nmi_handler,
    tp_hardfault_handler,
    tp_other_handler, /* MemManage */
    tp_other_handler, /* BusFault */
    tp_other_handler, /* UsageFault */
    tp_other_handler, /* SecureFault (ARMv8-M) */
    0, 0, 0,
    tp_other_handler, /* SVCall */
    tp_other_handler, /* DebugMonitor */
    0,
    tp_other_handler, /* PendSV */
    tp_systick_handler,
};

uint32_t tp_stack_high_water_bytes(void)
{
    const uint32_t *p = &_stack_bottom;
    while (p < &_stack_top && *p == TP_STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)&_stack_top - (uintptr_t)p);
}

uint32_t tp_stack_size_bytes(void)
{
    return (uint32_t)((uintptr_t)&_stack_top - (uintptr_t)&_stack_bottom);
}

void tp_reset_handler(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst;
    uint32_t *sp;

    for (dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    /* Paint the stack below the reset handler's own frame. */
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = &_stack_bottom; dst < sp - 16;) {
        *dst++ = TP_STACK_PAINT;
    }
#if defined(__ARM_FP)
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11: full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(__ARM_ARCH_6M__)
    /* Read-only on a real ARMv6-M core; on the Cortex-M3 that emulates one it makes unaligned
     * accesses fault as they would on the M0/M0+. */
    SCB_CCR |= (1u << 3);
#endif
    tp_halt(main());
}

static void tp_nmi_handler(void)
{
    TP_REPORT("tinyprune: NMI\n");
    tp_halt(3);
}

static void tp_hardfault_handler(void)
{
    TP_REPORT("tinyprune: HardFault\n");
    tp_halt(3);
}

void tp_other_handler(void)
{
    TP_REPORT("tinyprune: unexpected exception\n");
    tp_halt(3);
}
