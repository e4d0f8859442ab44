/* A write-only console UART, selected at compile time from the board file:
 *   -DTP_UART_KIND=TP_UART_<KIND> -DTP_UART_BASE=0x...
 * Kinds: CMSDK (Arm MPS2/MPS3), STM32 USART v1 (F1/F2/F4: SR/DR) and v2 (F7/L4/H7: ISR/TDR),
 * nRF51 UART, nRF52 UARTE (EasyDMA), PL011 (RP2040).
 *
 * Only the UART block itself is programmed. On real silicon the board support code must first
 * enable the peripheral's clock, route its TX pin and set the baud rate for the board's clock;
 * emulators (QEMU, Renode) need none of that.
 */
#ifndef TP_UART_H
#define TP_UART_H

#define TP_UART_CMSDK 1
#define TP_UART_STM32_USART_V1 2
#define TP_UART_STM32_USART_V2 3
#define TP_UART_NRF_UART 4
#define TP_UART_NRF_UARTE 5
#define TP_UART_PL011 6

void tp_uart_init(void);
void tp_uart_putc(char c);
void tp_uart_puts(const char *s);

#endif
