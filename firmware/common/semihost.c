#include "semihost.h"

/* Operation numbers from Arm's "Semihosting for AArch32 and AArch64" specification. */
enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_FLEN = 0x0C,
    SYS_EXIT_EXTENDED = 0x20,
};
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int sh_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static size_t cstrlen(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

int tp_sh_open(const char *path, int mode)
{
    uint32_t block[3];
    block[0] = (uint32_t)(uintptr_t)path;
    block[1] = (uint32_t)mode;
    block[2] = (uint32_t)cstrlen(path);
    return sh_call(SYS_OPEN, block);
}

int tp_sh_close(int handle)
{
    uint32_t block[1];
    block[0] = (uint32_t)handle;
    return sh_call(SYS_CLOSE, block);
}

/* SYS_READ and SYS_WRITE return the number of bytes NOT transferred. */
size_t tp_sh_read(int handle, void *buf, size_t len)
{
    uint32_t block[3];
    block[0] = (uint32_t)handle;
    block[1] = (uint32_t)(uintptr_t)buf;
    block[2] = (uint32_t)len;
    return len - (size_t)sh_call(SYS_READ, block);
}

size_t tp_sh_write(int handle, const void *buf, size_t len)
{
    uint32_t block[3];
    block[0] = (uint32_t)handle;
    block[1] = (uint32_t)(uintptr_t)buf;
    block[2] = (uint32_t)len;
    return len - (size_t)sh_call(SYS_WRITE, block);
}

long tp_sh_flen(int handle)
{
    uint32_t block[1];
    block[0] = (uint32_t)handle;
    return (long)sh_call(SYS_FLEN, block);
}

void tp_sh_puts(const char *s)
{
    (void)sh_call(SYS_WRITE0, s);
}

void tp_sh_put_u32(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u);
    tp_sh_puts(&buf[i]);
}

void tp_sh_put_u64(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (uint32_t)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    tp_sh_puts(&buf[i]);
}

void tp_sh_put_i32(int32_t v)
{
    if (v < 0) {
        tp_sh_puts("-");
        tp_sh_put_u32((uint32_t)(-(v + 1)) + 1u);
    } else {
        tp_sh_put_u32((uint32_t)v);
    }
}

void tp_sh_put_hex32(uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    char buf[11];
    int i;
    buf[0] = '0';
    buf[1] = 'x';
    for (i = 0; i < 8; i++) {
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[10] = '\0';
    tp_sh_puts(buf);
}

void tp_sh_exit(int code)
{
    /* SYS_EXIT_EXTENDED carries an exit status on 32-bit targets; QEMU exits with it. */
    uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    (void)sh_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}
