/* Instruction counting with SysTick.
 *
 * Under `qemu -icount shift=0` virtual time advances 1 ns per instruction, so a SysTick tick
 * clocked at F Hz spans 1e9/F instructions (40 on the 25 MHz MPS2 machines). The counter is
 * 24 bits wide; a SysTick exception counts wraps, so intervals of any length can be timed.
 * On real hardware the same ticks are core clock cycles.
 */
#ifndef TP_TIMER_H
#define TP_TIMER_H

#include <stdint.h>

void tp_timer_start(void);     /* enable SysTick on the processor clock, free-running */
uint64_t tp_timer_ticks(void); /* ticks since tp_timer_start() */

/* Execute exactly 2*n + (a small constant) instructions: for calibrating the conversion. */
void tp_timer_spin(uint32_t n);

#endif
