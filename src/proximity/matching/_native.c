/* proximity.matching._native: the per-key hot loops of matching, in C.
 *
 * Interpreted per-key overhead (four hash calls and two AES calls per key) is what limits the pure
 * Python matcher, so this module does the whole per-key job over buffers:
 *   - HKDF-SHA256 of 16-byte TEKs with the zero salt (HMAC pad states computed once);
 *   - AES-128 with AES-NI, or VAES (two blocks an instruction) where the CPU and OS have it; runtime
 *     dispatch: without AES-NI there is no fast path and Python falls back;
 *   - GAEN: 144 RPIs per key, optionally probed straight against the observed-ID index;
 *   - Bluezone: the SHA-256 ID chains of many daily-key records;
 *   - the index probe itself (prefix bitmaps, binary search, exact compare).
 * SHA-256 is portable C, with a SHA-NI compression chosen at run time when the CPU has it. No OpenSSL
 * headers are needed. Every loop runs without the GIL. The Python module proximity.matching.native
 * self-tests this against an official vector before choosing it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define PX_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define PX_X86 0
#endif

/* ---------------------------------------------------------------- SHA-256 (portable) -------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t IV256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void sha256_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t w[64];
    while (blocks--) {
        for (int i = 0; i < 16; i++) w[i] = load_be32(data + 4 * i);
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
            uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
        data += 64;
    }
}

#if PX_X86
/* SHA-256 compression with the SHA extensions (Intel's published instruction sequence). */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_shani(uint32_t state[8], const uint8_t *data,
                                                                    size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i state1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                /* CDAB */
    state1 = _mm_shuffle_epi32(state1, 0x1B);          /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);       /* CDGH */
    while (blocks--) {
        __m128i abef = state0, cdgh = state1, msg, w[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            if (g < 4) w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), mask);
            msg = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&K256[4 * g]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            if (g >= 3 && g <= 14) {
                __m128i t = _mm_alignr_epi8(w[g & 3], w[(g - 1) & 3], 4);
                w[(g + 1) & 3] = _mm_add_epi32(w[(g + 1) & 3], t);
                w[(g + 1) & 3] = _mm_sha256msg2_epu32(w[(g + 1) & 3], w[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
            if (g >= 1 && g <= 12) w[(g - 1) & 3] = _mm_sha256msg1_epu32(w[(g - 1) & 3], w[g & 3]);
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
        data += 64;
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);        /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);     /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);  /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);     /* ABEF */
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}
#endif

typedef void (*compress_fn)(uint32_t state[8], const uint8_t *data, size_t blocks);
static compress_fn sha256_compress = sha256_portable;
static int have_shani = 0, have_aesni = 0, have_vaes = 0;

static void digest_of(const uint32_t state[8], uint8_t out[32]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, state[i]);
}

/* SHA-256 of a message of any length (padding in one or two final blocks). */
static void sha256_full(const uint8_t *msg, size_t len, uint8_t out[32]) {
    uint32_t st[8];
    uint8_t tail[128];
    memcpy(st, IV256, sizeof st);
    size_t full = len / 64;
    if (full) sha256_compress(st, msg, full);
    size_t rest = len - 64 * full;
    memset(tail, 0, sizeof tail);
    memcpy(tail, msg + 64 * full, rest);
    tail[rest] = 0x80;
    size_t tail_blocks = rest + 9 > 64 ? 2 : 1;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[64 * tail_blocks - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha256_compress(st, tail, tail_blocks);
    digest_of(st, out);
}

/* One block holding ``len`` (< 56) bytes after ``prefix_bytes`` already compressed, padded. */
static void final_block(uint32_t st[8], const uint8_t *msg, size_t len, size_t prefix_bytes) {
    uint8_t block[64];
    memset(block, 0, sizeof block);
    memcpy(block, msg, len);
    block[len] = 0x80;
    uint64_t bits = (uint64_t)(prefix_bytes + len) * 8;
    for (int i = 0; i < 8; i++) block[63 - i] = (uint8_t)(bits >> (8 * i));
    sha256_compress(st, block, 1);
}

/* ---------------------------------------------------------------- HKDF for 16-byte TEKs ----- */

static uint32_t zero_ipad_state[8], zero_opad_state[8];

static void init_hmac_pads(void) {
    uint8_t pad[64];
    memcpy(zero_ipad_state, IV256, sizeof zero_ipad_state);
    memcpy(zero_opad_state, IV256, sizeof zero_opad_state);
    memset(pad, 0x36, 64);
    sha256_compress(zero_ipad_state, pad, 1);
    memset(pad, 0x5c, 64);
    sha256_compress(zero_opad_state, pad, 1);
}

/* HKDF-SHA256(IKM = 16 bytes, salt = none, info, L = 16): six compressions. info_len <= 54. */
static void hkdf16(const uint8_t ikm[16], const uint8_t *info, size_t info_len, uint8_t out[16]) {
    uint32_t st[8];
    uint8_t digest[32], prk[32], block[64], msg[64];
    memcpy(st, zero_ipad_state, sizeof st);
    final_block(st, ikm, 16, 64);
    digest_of(st, digest);
    memcpy(st, zero_opad_state, sizeof st);
    final_block(st, digest, 32, 64);
    digest_of(st, prk);
    /* expand: T(1) = HMAC(prk, info || 0x01) */
    memset(block, 0x36, 64);
    for (int i = 0; i < 32; i++) block[i] ^= prk[i];
    memcpy(st, IV256, sizeof st);
    sha256_compress(st, block, 1);
    memcpy(msg, info, info_len);
    msg[info_len] = 0x01;
    final_block(st, msg, info_len + 1, 64);
    digest_of(st, digest);
    memset(block, 0x5c, 64);
    for (int i = 0; i < 32; i++) block[i] ^= prk[i];
    memcpy(st, IV256, sizeof st);
    sha256_compress(st, block, 1);
    final_block(st, digest, 32, 64);
    digest_of(st, digest);
    memcpy(out, digest, 16);
}

/* ---------------------------------------------------------------- AES-128 (AES-NI) ---------- */

#if PX_X86
#define AES_TARGET __attribute__((target("aes,sse2")))

AES_TARGET static inline __m128i aes_assist(__m128i key, __m128i gen) {
    gen = _mm_shuffle_epi32(gen, 0xFF);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, gen);
}

#define EXPAND_ROUND(i, rcon) rk[i] = aes_assist(rk[i - 1], _mm_aeskeygenassist_si128(rk[i - 1], rcon))

AES_TARGET static inline void aes128_expand(const uint8_t key[16], __m128i rk[11]) {
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    EXPAND_ROUND(1, 0x01);
    EXPAND_ROUND(2, 0x02);
    EXPAND_ROUND(3, 0x04);
    EXPAND_ROUND(4, 0x08);
    EXPAND_ROUND(5, 0x10);
    EXPAND_ROUND(6, 0x20);
    EXPAND_ROUND(7, 0x40);
    EXPAND_ROUND(8, 0x80);
    EXPAND_ROUND(9, 0x1b);
    EXPAND_ROUND(10, 0x36);
}

/* Encrypt 8 blocks in place, interleaved so the AES unit's pipeline stays full. */
AES_TARGET static inline void aes128_encrypt8(const __m128i rk[11], __m128i b[8]) {
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) b[k] = _mm_xor_si128(b[k], rk[0]);
#pragma GCC unroll 9
    for (int r = 1; r < 10; r++) {
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) b[k] = _mm_aesenc_si128(b[k], rk[r]);
    }
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) b[k] = _mm_aesenclast_si128(b[k], rk[10]);
}

AES_TARGET static inline __m128i aes128_encrypt1(const __m128i rk[11], __m128i b) {
    b = _mm_xor_si128(b, rk[0]);
    for (int r = 1; r < 10; r++) b = _mm_aesenc_si128(b, rk[r]);
    return _mm_aesenclast_si128(b, rk[10]);
}

/* The 16-byte PaddedData "EN-RPI" || 6 zero bytes || ENIN (uint32 little-endian). */
static inline __m128i padded_rpi_block(uint32_t interval) {
    return _mm_set_epi32((int)interval, 0, 0x00004950, 0x522d4e45);
}

/* The 144 padded blocks from ``start`` encrypted (interval numbers wrap as uint32, as numpy's). */
AES_TARGET static void rpi_blocks_aesni(const __m128i rk[11], uint32_t start, uint8_t *out) {
    __m128i b[8];
    for (int j = 0; j < 144; j += 8) {
        for (int k = 0; k < 8; k++) b[k] = padded_rpi_block(start + (uint32_t)(j + k));
        aes128_encrypt8(rk, b);
        for (int k = 0; k < 8; k++) _mm_storeu_si128((__m128i *)(out + 16 * (j + k)), b[k]);
    }
}

/* The same with VAES: two blocks per 256-bit instruction, 16 blocks in flight. */
__attribute__((target("vaes,avx2,aes"))) static void rpi_blocks_vaes(const __m128i rk128[11], uint32_t start,
                                                                    uint8_t *out) {
    __m256i rk[11], b[8];
    for (int r = 0; r < 11; r++) rk[r] = _mm256_broadcastsi128_si256(rk128[r]);
    /* blocks for intervals i and i + 1; the counter lanes step by 2 (wrapping as uint32) */
    __m256i next = _mm256_set_epi32((int)(start + 1), 0, 0x00004950, 0x522d4e45, (int)start, 0, 0x00004950,
                                    0x522d4e45);
    const __m256i two = _mm256_set_epi32(2, 0, 0, 0, 2, 0, 0, 0);
    for (int j = 0; j < 144; j += 16) {
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            b[k] = _mm256_xor_si256(next, rk[0]);
            next = _mm256_add_epi32(next, two);
        }
#pragma GCC unroll 9
        for (int r = 1; r < 10; r++) {
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) b[k] = _mm256_aesenc_epi128(b[k], rk[r]);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            b[k] = _mm256_aesenclast_epi128(b[k], rk[10]);
            _mm256_storeu_si256((__m256i *)(out + 16 * (j + 2 * k)), b[k]);
        }
    }
}

typedef void (*rpi_blocks_fn)(const __m128i rk[11], uint32_t start, uint8_t *out);
static rpi_blocks_fn rpi_blocks = rpi_blocks_aesni;

/* All 144 RPIs of one TEK starting at ``start``. */
AES_TARGET static void gaen_rpis_one(const uint8_t tek[16], uint32_t start, uint8_t *out) {
    uint8_t rpik[16];
    __m128i rk[11];
    hkdf16(tek, (const uint8_t *)"EN-RPIK", 7, rpik);
    aes128_expand(rpik, rk);
    rpi_blocks(rk, start, out);
}
#endif

/* ---------------------------------------------------------------- index probe --------------- */

typedef struct {
    const uint64_t *keys;    /* U sorted 64-bit prefixes (first 8 bytes, native order) */
    const uint8_t *ids;      /* U * L unique IDs in the same order */
    const uint8_t *bitmap1;  /* 1 << bits flags over the top bits, 8 a byte, little bit order */
    const uint8_t *bitmap2;  /* 1 << bits flags over the next bits, packed the same way */
    Py_ssize_t count, length;
    int shift1, shift2;
    uint64_t mask;
} index_t;

static inline Py_ssize_t probe_one(const index_t *ix, const uint8_t *candidate) {
    uint64_t k;
    memcpy(&k, candidate, 8);
    uint64_t top = k >> ix->shift1, next = (k >> ix->shift2) & ix->mask;
    if (!((ix->bitmap1[top >> 3] >> (top & 7)) & 1)) return -1;
    if (!((ix->bitmap2[next >> 3] >> (next & 7)) & 1)) return -1;
    Py_ssize_t lo = 0, hi = ix->count;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (ix->keys[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < ix->count && ix->keys[lo] == k; lo++)
        if (memcmp(ix->ids + lo * ix->length, candidate, (size_t)ix->length) == 0) return lo;
    return -1;
}

/* Parse the index buffers (keys, ids, bitmap1, bitmap2, bits); fills ix. Returns 0 or -1 (error set). */
static int index_from(Py_buffer *keys, Py_buffer *ids, Py_buffer *bm1, Py_buffer *bm2, int bits,
                      Py_ssize_t length, index_t *ix) {
    if (bits < 3 || bits > 31) {
        PyErr_Format(PyExc_ValueError, "prefix bits must be 3..31, got %d", bits);
        return -1;
    }
    if (length < 8) {
        PyErr_Format(PyExc_ValueError, "ID length must be at least 8, got %zd", length);
        return -1;
    }
    if (keys->len % 8 || ids->len != (keys->len / 8) * length) {
        PyErr_SetString(PyExc_ValueError, "index keys and unique IDs disagree in size");
        return -1;
    }
    if (bm1->len != ((Py_ssize_t)1 << (bits - 3)) || bm2->len != ((Py_ssize_t)1 << (bits - 3))) {
        PyErr_SetString(PyExc_ValueError, "index bitmaps must hold 1 << bits flags each, 8 a byte");
        return -1;
    }
    ix->keys = (const uint64_t *)keys->buf;
    ix->ids = (const uint8_t *)ids->buf;
    ix->bitmap1 = (const uint8_t *)bm1->buf;
    ix->bitmap2 = (const uint8_t *)bm2->buf;
    ix->count = keys->len / 8;
    ix->length = length;
    ix->shift1 = 64 - bits;
    ix->shift2 = 64 - 2 * bits;
    ix->mask = ((uint64_t)1 << bits) - 1;
    return 0;
}

/* ---------------------------------------------------------------- Python bindings ----------- */

static void release(Py_buffer *views, int n) {
    for (int i = 0; i < n; i++)
        if (views[i].obj) PyBuffer_Release(&views[i]);
}

static PyObject *require_aesni(void) {
    PyErr_SetString(PyExc_RuntimeError, "this CPU has no AES-NI: use the Python matching path");
    return NULL;
}

PyDoc_STRVAR(hkdf16_doc, "hkdf16(ikms, info, out): HKDF-SHA256 (zero salt, L=16) of every 16-byte IKM.");

static PyObject *py_hkdf16(PyObject *self, PyObject *args) {
    Py_buffer v[3] = {{0}};
    if (!PyArg_ParseTuple(args, "y*y*w*", &v[0], &v[1], &v[2])) {
        release(v, 3);
        return NULL;
    }
    if (v[0].len % 16 || v[2].len != v[0].len || v[1].len > 54) {
        release(v, 3);
        PyErr_SetString(PyExc_ValueError, "ikms must be n*16 bytes, out as long, info at most 54 bytes");
        return NULL;
    }
    Py_ssize_t n = v[0].len / 16;
    const uint8_t *in = v[0].buf, *info = v[1].buf;
    uint8_t *out = v[2].buf;
    size_t info_len = (size_t)v[1].len;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n; i++) hkdf16(in + 16 * i, info, info_len, out + 16 * i);
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(sha256_doc, "sha256(data) -> bytes: SHA-256 with the compression this module chose.");

static PyObject *py_sha256(PyObject *self, PyObject *args) {
    Py_buffer data = {0};
    uint8_t out[32];
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    sha256_full(data.buf, (size_t)data.len, out);
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)out, 32);
}

PyDoc_STRVAR(gaen_rpis_doc,
             "gaen_rpis(teks, starts, out): the 144 RPIs of every TEK (n*16 bytes) from its start "
             "(n uint32), written to out (n*144*16 bytes).");

static PyObject *py_gaen_rpis(PyObject *self, PyObject *args) {
#if PX_X86
    Py_buffer v[3] = {{0}};
    if (!have_aesni) return require_aesni();
    if (!PyArg_ParseTuple(args, "y*y*w*", &v[0], &v[1], &v[2])) {
        release(v, 3);
        return NULL;
    }
    Py_ssize_t n = v[0].len / 16;
    if (v[0].len % 16 || n > PY_SSIZE_T_MAX / (144 * 16) || v[1].len != 4 * n || v[2].len != n * 144 * 16) {
        release(v, 3);
        PyErr_SetString(PyExc_ValueError, "need teks n*16 bytes, starts n uint32, out n*144*16 bytes");
        return NULL;
    }
    const uint8_t *teks = v[0].buf;
    const uint32_t *starts = v[1].buf;
    uint8_t *out = v[2].buf;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n; i++) gaen_rpis_one(teks + 16 * i, starts[i], out + i * 144 * 16);
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
#else
    return require_aesni();
#endif
}

PyDoc_STRVAR(aes128_ecb_doc,
             "aes128_ecb(keys, blocks, out): key i (n*16 bytes) encrypts its row of blocks "
             "(n*b*16 bytes) into out (same size).");

static PyObject *py_aes128_ecb(PyObject *self, PyObject *args) {
#if PX_X86
    Py_buffer v[3] = {{0}};
    if (!have_aesni) return require_aesni();
    if (!PyArg_ParseTuple(args, "y*y*w*", &v[0], &v[1], &v[2])) {
        release(v, 3);
        return NULL;
    }
    Py_ssize_t n = v[0].len / 16;
    if (v[0].len % 16 || (n == 0 ? v[1].len != 0 : v[1].len % (16 * n)) || v[2].len != v[1].len) {
        release(v, 3);
        PyErr_SetString(PyExc_ValueError, "need keys n*16 bytes, blocks n*b*16 bytes, out as long");
        return NULL;
    }
    Py_ssize_t per = n ? v[1].len / (16 * n) : 0;
    const uint8_t *keys = v[0].buf, *in = v[1].buf;
    uint8_t *out = v[2].buf;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < n; i++) {
        __m128i rk[11];
        aes128_expand(keys + 16 * i, rk);
        for (Py_ssize_t j = 0; j < per; j++) {
            Py_ssize_t at = 16 * (i * per + j);
            __m128i b = aes128_encrypt1(rk, _mm_loadu_si128((const __m128i *)(in + at)));
            _mm_storeu_si128((__m128i *)(out + at), b);
        }
    }
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
#else
    return require_aesni();
#endif
}

PyDoc_STRVAR(probe_doc,
             "probe(candidates, length, keys, ids, bitmap1, bitmap2, bits, out_pos, out_unique) -> count: "
             "the positions of the candidates (n*length bytes) found in the index (sorted uint64 keys, "
             "unique IDs, two bitmaps of 1 << bits flags packed 8 a byte), with their unique index "
             "(int64 outputs of n entries each); returns how many were found.");

static PyObject *py_probe(PyObject *self, PyObject *args) {
    Py_buffer v[7] = {{0}};
    Py_ssize_t length;
    int bits;
    index_t ix;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*y*iw*w*", &v[0], &length, &v[1], &v[2], &v[3], &v[4], &bits,
                          &v[5], &v[6])) {
        release(v, 7);
        return NULL;
    }
    if (index_from(&v[1], &v[2], &v[3], &v[4], bits, length, &ix) < 0) {
        release(v, 7);
        return NULL;
    }
    Py_ssize_t n = v[0].len / length;
    if (v[0].len % length || v[5].len != 8 * n || v[6].len != 8 * n) {
        release(v, 7);
        PyErr_SetString(PyExc_ValueError, "candidates must be n*length bytes and outputs n int64 each");
        return NULL;
    }
    const uint8_t *cand = v[0].buf;
    int64_t *pos = v[5].buf, *uniq = v[6].buf;
    Py_ssize_t found = 0;
    Py_BEGIN_ALLOW_THREADS;
    if (ix.count)
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t u = probe_one(&ix, cand + i * length);
            if (u >= 0) {
                pos[found] = i;
                uniq[found++] = u;
            }
        }
    Py_END_ALLOW_THREADS;
    release(v, 7);
    return PyLong_FromSsize_t(found);
}

PyDoc_STRVAR(gaen_probe_doc,
             "gaen_probe(teks, starts, periods, keys, ids, bitmap1, bitmap2, bits, out_pos, out_unique) "
             "-> count: derive the first periods[i] RPIs of every TEK and probe the index (16-byte IDs) "
             "with each; positions are key * 144 + interval offset.");

static PyObject *py_gaen_probe(PyObject *self, PyObject *args) {
#if PX_X86
    Py_buffer v[9] = {{0}};
    int bits;
    index_t ix;
    if (!have_aesni) return require_aesni();
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*iw*w*", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                          &bits, &v[7], &v[8])) {
        release(v, 9);
        return NULL;
    }
    if (index_from(&v[3], &v[4], &v[5], &v[6], bits, 16, &ix) < 0) {
        release(v, 9);
        return NULL;
    }
    Py_ssize_t n = v[0].len / 16;
    if (v[0].len % 16 || v[1].len != 4 * n || v[2].len != n || v[7].len != 8 * 144 * n ||
        v[8].len != 8 * 144 * n) {
        release(v, 9);
        PyErr_SetString(PyExc_ValueError,
                        "need teks n*16 bytes, starts n uint32, periods n uint8, outputs n*144 int64 each");
        return NULL;
    }
    const uint8_t *teks = v[0].buf, *periods = v[2].buf;
    const uint32_t *starts = v[1].buf;
    int64_t *pos = v[7].buf, *uniq = v[8].buf;
    Py_ssize_t found = 0;
    Py_BEGIN_ALLOW_THREADS;
    if (ix.count)
        for (Py_ssize_t i = 0; i < n; i++) {
            uint8_t rpis[144 * 16];
            int period = periods[i] > 144 ? 144 : periods[i];
            gaen_rpis_one(teks + 16 * i, starts[i], rpis);
            for (int j = 0; j < period; j++) {
                Py_ssize_t u = probe_one(&ix, rpis + 16 * j);
                if (u >= 0) {
                    pos[found] = i * 144 + j;
                    uniq[found++] = u;
                }
            }
        }
    Py_END_ALLOW_THREADS;
    release(v, 9);
    return PyLong_FromSsize_t(found);
#else
    return require_aesni();
#endif
}

static const uint8_t BLUEZONE_SELECT[12] = {0, 4, 8, 12, 16, 18, 20, 22, 24, 26, 28, 30};

PyDoc_STRVAR(bluezone_ids_doc,
             "bluezone_ids(daily_keys, key_length, salt, count, ids_per_day, out): the first count IDs "
             "of every record (n*key_length bytes of daily keys) by the SHA-256 chains, into out "
             "(n*count*12 bytes).");

static PyObject *py_bluezone_ids(PyObject *self, PyObject *args) {
    Py_buffer v[3] = {{0}};
    Py_ssize_t klen, count, per_day;
    if (!PyArg_ParseTuple(args, "y*ny*nnw*", &v[0], &klen, &v[1], &count, &per_day, &v[2])) {
        release(v, 3);
        return NULL;
    }
    if (klen < 1 || klen > 64 || v[0].len % klen || count < 0 || per_day < 1 || v[1].len > 64) {
        release(v, 3);
        PyErr_SetString(PyExc_ValueError, "bad key length, salt, count or ids_per_day");
        return NULL;
    }
    Py_ssize_t n = v[0].len / klen;
    /* n*count*12 must not wrap around: a wrapped size could pass the check below with a tiny buffer. */
    if (count > 0 && n > PY_SSIZE_T_MAX / 12 / count) {
        release(v, 3);
        PyErr_SetString(PyExc_OverflowError, "n*count*12 bytes of output overflow Py_ssize_t");
        return NULL;
    }
    if (v[2].len != n * count * 12) {
        release(v, 3);
        PyErr_SetString(PyExc_ValueError, "out must be n*count*12 bytes");
        return NULL;
    }
    const uint8_t *keys = v[0].buf, *salt = v[1].buf;
    size_t salt_len = (size_t)v[1].len;
    uint8_t *out = v[2].buf;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t r = 0; r < n; r++) {
        uint8_t key[64], msg[128], state[32];
        size_t key_len = (size_t)klen;
        memcpy(key, keys + r * klen, key_len);
        uint8_t *dst = out + r * count * 12;
        for (Py_ssize_t slot = 0; slot < count;) {
            memcpy(msg, key, key_len);
            memcpy(msg + key_len, salt, salt_len);
            sha256_full(msg, key_len + salt_len, state);
            for (Py_ssize_t s = 0; s < per_day && slot < count; s++, slot++) {
                for (int b = 0; b < 12; b++) dst[12 * slot + b] = state[BLUEZONE_SELECT[b]];
                uint32_t st[8];
                memcpy(st, IV256, sizeof st);
                final_block(st, state, 32, 0);
                digest_of(st, state);
            }
            sha256_full(key, key_len, key);
            key_len = 32;
        }
    }
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(features_doc, "features() -> dict: what this CPU offers and which SHA-256 compression runs.");

static const char *aes_name(void) {
#if PX_X86
    return rpi_blocks == rpi_blocks_vaes ? "vaes" : "aesni";
#else
    return "none";
#endif
}

static PyObject *py_features(PyObject *self, PyObject *noargs) {
    return Py_BuildValue("{s:O,s:O,s:O,s:s,s:s}", "aesni", have_aesni ? Py_True : Py_False, "vaes",
                         have_vaes ? Py_True : Py_False, "shani", have_shani ? Py_True : Py_False, "sha256",
                         sha256_compress == sha256_portable ? "portable" : "shani", "aes", aes_name());
}

PyDoc_STRVAR(set_aes_doc,
             "set_aes(name) -> str: encrypt the RPI blocks with 'aesni' or 'vaes' (for tests); returns the "
             "previous one.");

static PyObject *py_set_aes(PyObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    const char *previous = aes_name();
#if PX_X86
    if (strcmp(name, "aesni") == 0 && have_aesni) {
        rpi_blocks = rpi_blocks_aesni;
        return PyUnicode_FromString(previous);
    }
    if (strcmp(name, "vaes") == 0 && have_vaes) {
        rpi_blocks = rpi_blocks_vaes;
        return PyUnicode_FromString(previous);
    }
#endif
    PyErr_Format(PyExc_ValueError, "unknown or unsupported AES implementation %s", name);
    return NULL;
}

PyDoc_STRVAR(set_sha256_doc,
             "set_sha256(name) -> str: use the 'portable' or 'shani' compression (for tests); returns the "
             "previous one.");

static PyObject *py_set_sha256(PyObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    const char *previous = sha256_compress == sha256_portable ? "portable" : "shani";
    if (strcmp(name, "portable") == 0) {
        sha256_compress = sha256_portable;
#if PX_X86
    } else if (strcmp(name, "shani") == 0 && have_shani) {
        sha256_compress = sha256_shani;
#endif
    } else {
        PyErr_Format(PyExc_ValueError, "unknown or unsupported SHA-256 compression %s", name);
        return NULL;
    }
    return PyUnicode_FromString(previous);
}

static PyMethodDef methods[] = {
    {"hkdf16", py_hkdf16, METH_VARARGS, hkdf16_doc},
    {"sha256", py_sha256, METH_VARARGS, sha256_doc},
    {"gaen_rpis", py_gaen_rpis, METH_VARARGS, gaen_rpis_doc},
    {"aes128_ecb", py_aes128_ecb, METH_VARARGS, aes128_ecb_doc},
    {"probe", py_probe, METH_VARARGS, probe_doc},
    {"gaen_probe", py_gaen_probe, METH_VARARGS, gaen_probe_doc},
    {"bluezone_ids", py_bluezone_ids, METH_VARARGS, bluezone_ids_doc},
    {"features", py_features, METH_NOARGS, features_doc},
    {"set_sha256", py_set_sha256, METH_VARARGS, set_sha256_doc},
    {"set_aes", py_set_aes, METH_VARARGS, set_aes_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "Matching hot loops in C (see proximity.matching.native).", -1, methods,
                                    NULL, NULL, NULL, NULL};

static void detect_cpu(void) {
#if PX_X86
    unsigned a, b, c, d;
    int sse41 = 0, ssse3 = 0, ymm_enabled = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        have_aesni = (c >> 25) & 1;
        sse41 = (c >> 19) & 1;
        ssse3 = (c >> 9) & 1;
        if ((c >> 27) & 1) { /* OSXSAVE: ask the OS whether it saves the YMM state */
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            ymm_enabled = (lo & 6) == 6;
        }
    }
    if (__get_cpuid_max(0, 0) >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        have_shani = ((b >> 29) & 1) && sse41 && ssse3;
        have_vaes = have_aesni && ymm_enabled && ((b >> 5) & 1) && ((c >> 9) & 1); /* AVX2, VAES */
    }
    if (have_shani) sha256_compress = sha256_shani;
    if (have_vaes) rpi_blocks = rpi_blocks_vaes;
#endif
}

PyMODINIT_FUNC PyInit__native(void) {
    detect_cpu();
    init_hmac_pads();
    return PyModule_Create(&module);
}
