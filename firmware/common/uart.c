#include "uart.h"

#include <stdint.h>

#if !defined(TP_UART_KIND) || !defined(TP_UART_BASE)
#error "define TP_UART_KIND and TP_UART_BASE (tinyprune passes them from the board file)"
#endif

#define REG(offset) (*(volatile uint32_t *)((uintptr_t)(TP_UART_BASE) + (offset)))

#if TP_UART_KIND == TP_UART_CMSDK
/* DATA 0x00, STATE 0x04 (bit 0: TX buffer full), CTRL 0x08 (bit 0: TX enable), BAUDDIV 0x10 */
void tp_uart_init(void)
{
    REG(0x10) = 16u; /* the smallest divider the block accepts */
    REG(0x08) = 1u;
}

void tp_uart_putc(char c)
{
    while (REG(0x04) & 1u) {
    }
    REG(0x00) = (uint8_t)c;
}

#elif TP_UART_KIND == TP_UART_STM32_USART_V1
/* SR 0x00 (bit 7: TXE), DR 0x04, BRR 0x08, CR1 0x0C (bit 13: UE, bit 3: TE) */
void tp_uart_init(void)
{
    REG(0x0C) = (1u << 13) | (1u << 3);
}

void tp_uart_putc(char c)
{
    while (!(REG(0x00) & (1u << 7))) {
    }
    REG(0x04) = (uint8_t)c;
}

#elif TP_UART_KIND == TP_UART_STM32_USART_V2
/* CR1 0x00 (bit 0: UE, bit 3: TE), BRR 0x0C, ISR 0x1C (bit 7: TXE), TDR 0x28 */
void tp_uart_init(void)
{
    REG(0x00) = (1u << 3) | 1u;
}

void tp_uart_putc(char c)
{
    while (!(REG(0x1C) & (1u << 7))) {
    }
    REG(0x28) = (uint8_t)c;
}

#elif TP_UART_KIND == TP_UART_NRF_UART
/* TASKS_STARTTX 0x008, EVENTS_TXDRDY 0x11C, ENABLE 0x500 (4 = UART), TXD 0x51C */
void tp_uart_init(void)
{
    REG(0x500) = 4u;
    REG(0x008) = 1u;
}

void tp_uart_putc(char c)
{
    REG(0x11C) = 0u;
    REG(0x51C) = (uint8_t)c;
    while (REG(0x11C) == 0u) {
    }
}

#elif TP_UART_KIND == TP_UART_NRF_UARTE
/* TASKS_STARTTX 0x008, EVENTS_ENDTX 0x120, ENABLE 0x500 (8 = UARTE), TXD.PTR 0x544,
 * TXD.MAXCNT 0x548. EasyDMA reads from RAM, so each byte goes through a RAM buffer. */
void tp_uart_init(void)
{
    REG(0x500) = 8u;
}

void tp_uart_putc(char c)
{
    static volatile uint8_t tx_byte; /* one per image: the console is a single device */
    tx_byte = (uint8_t)c;
    REG(0x544) = (uint32_t)(uintptr_t)&tx_byte;
    REG(0x548) = 1u;
    REG(0x120) = 0u;
    REG(0x008) = 1u;
    while (REG(0x120) == 0u) {
    }
}

#elif TP_UART_KIND == TP_UART_PL011
/* DR 0x000, FR 0x018 (bit 5: TXFF), CR 0x030 (bit 0: UARTEN, bit 8: TXE) */
void tp_uart_init(void)
{
    REG(0x030) = (1u << 8) | 1u;
}

void tp_uart_putc(char c)
{
    while (REG(0x018) & (1u << 5)) {
    }
    REG(0x000) = (uint8_t)c;
}

#else
#error "unknown TP_UART_KIND"
#endif

void tp_uart_puts(const char *s)
{
    while (*s != '\0') {
        if (*s == '\n') {
            tp_uart_putc('\r');
        }
        tp_uart_putc(*s++);
    }
}
