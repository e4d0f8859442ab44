/* The smallest tinyprune firmware: proves the cross compiler, the generated linker script and
 * the emulator's semihosting work for a board. Built by tests and `make demo`. */
#include <stdint.h>

#include "semihost.h"
#include "startup.h"
#ifdef TP_CONSOLE_UART
#include "uart.h"
#endif

#ifndef TP_BOARD_NAME
#define TP_BOARD_NAME "unknown-board"
#endif
#ifndef TP_CORE_NAME
#define TP_CORE_NAME "unknown-core"
#endif

#ifdef TP_HELLO_PAD_BYTES
/* Test aid: a constant blob that makes the image larger than a board's flash. */
const uint8_t tp_hello_pad[TP_HELLO_PAD_BYTES] = {1};
#endif

int main(void)
{
#ifdef TP_CONSOLE_UART
    tp_uart_init();
    tp_uart_puts("hello over the UART from tinyprune on " TP_BOARD_NAME "\n");
#endif
    tp_sh_puts("hello from tinyprune on " TP_BOARD_NAME " (" TP_CORE_NAME ")\n");
#ifdef TP_HELLO_PAD_BYTES
    tp_sh_puts("pad byte: ");
    tp_sh_put_u32(((volatile const uint8_t *)tp_hello_pad)[0]);
    tp_sh_puts("\n");
#endif
#ifdef TP_HELLO_HANG
    /* Test aid: a firmware that never finishes, for the emulator timeout. */
    for (;;) {
    }
#endif
    tp_sh_puts("stack used: ");
    tp_sh_put_u32(tp_stack_high_water_bytes());
    tp_sh_puts(" of ");
    tp_sh_put_u32(tp_stack_size_bytes());
    tp_sh_puts(" bytes\n");
    return 0;
}
