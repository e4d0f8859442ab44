#ifndef TP_STARTUP_H
#define TP_STARTUP_H

#include <stdint.h>

#define TP_STACK_PAINT 0xC0FFEE11u

/* Bytes of stack touched since reset (the painted words that changed). */
uint32_t tp_stack_high_water_bytes(void);
uint32_t tp_stack_size_bytes(void);

#endif
