/* Arm semihosting for bare-metal images: console output, host files and exit, with no libc.
 *
 * The harness uses it to read a batch of inputs and write all outputs in one emulator
 * launch. Calls trap with BKPT 0xAB (M-profile); QEMU answers them with
 * -semihosting-config enable=on,target=native. On hardware without a debugger attached a
 * BKPT faults, so firmware for real boards prints over the UART instead (see uart.h).
 */
#ifndef TP_SEMIHOST_H
#define TP_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

/* Open modes of SYS_OPEN (the ISO C fopen modes, in the order the spec numbers them). */
enum { TP_SH_MODE_RB = 1, TP_SH_MODE_WB = 5 };

int tp_sh_open(const char *path, int mode);            /* handle, or -1 */
int tp_sh_close(int handle);
size_t tp_sh_read(int handle, void *buf, size_t len);  /* bytes read */
size_t tp_sh_write(int handle, const void *buf, size_t len); /* bytes written */
long tp_sh_flen(int handle);                           /* file length, or -1 */
void tp_sh_puts(const char *s);                        /* to the host console */
void tp_sh_put_u32(uint32_t v);
void tp_sh_put_u64(uint64_t v);
void tp_sh_put_i32(int32_t v);
void tp_sh_put_hex32(uint32_t v);
void tp_sh_exit(int code) __attribute__((noreturn));   /* QEMU exits with `code` */

#endif
