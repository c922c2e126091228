/*
 * errors.c - descriptions of the codec status codes.
 */
#include "xpress.h"

const char *xp_strerror(xp_status status)
{
    switch (status) {
    case XP_OK:
        return "success";
    case XP_E_TRUNCATED:
        return "compressed data truncated";
    case XP_E_SHORT:
        return "stream ends before the expected output size";
    case XP_E_DISTANCE:
        return "match distance reaches before the start of the output";
    case XP_E_OVERRUN:
        return "match runs past the expected output size";
    case XP_E_BAD_LENGTH:
        return "invalid match length escape";
    case XP_E_BAD_CODE:
        return "Huffman code-length table is not a complete prefix code";
    case XP_E_NOMEM:
        return "out of memory";
    case XP_E_CAPACITY:
        return "output buffer too small";
    }
    return "unknown error";
}
