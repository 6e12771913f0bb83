/* proximity.crypto._native: the generic batch crypto primitives of the C backend.
 *
 * Interpreted per-key overhead (hash and cipher calls per key) is what limits pure Python crypto over
 * many keys, so this module runs each primitive over a whole batch of keys, in buffers, without the GIL:
 *   - SHA-256 of many rows, SHA-256 chains (s_{i+1} = SHA-256(s_i)) with a byte selection of each link;
 *   - HMAC-SHA256 of one message under many keys, HKDF-SHA256 (salt none, L <= 32) of many IKMs;
 *   - AES-128/-256 ECB (key i encrypts its row of blocks) and CTR (from each key's counter block), with
 *     AES-NI, or VAES (two blocks an instruction) where the CPU and OS have it; runtime dispatch: without
 *     AES-NI the AES primitives refuse and the Python reference backend runs instead;
 *   - the observed-ID index probe (prefix bitmaps, binary search, exact compare), alone or fused with
 *     AES-ECB so a key's blocks are probed while still in L1 (a scheme's rotating IDs).
 * Nothing here knows a scheme: schemes compose these primitives (proximity.schemes.*). SHA-256 is portable
 * C, with a SHA-NI compression chosen at run time. No OpenSSL headers are needed. proximity.crypto.native
 * self-tests this against published vectors before choosing it.
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

#if defined(_WIN32) || defined(__STDC_NO_ATOMICS__)
#define PX_PTHREADS 0 /* no pthreads: every batch runs on the calling thread */
#else
#define PX_PTHREADS 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#endif

/* ---------------------------------------------------------------- batches over threads ----- */

/* A batch of n independent items runs in chunks of ``chunk`` items (fn(ctx, lo, hi, c) for chunk c).
 * With ``threads`` > 1 and enough chunks, helper threads and the calling thread take the next chunk
 * from a shared counter until none is left: a helper that the OS does not schedule (a busy machine)
 * delays nothing, the others take its share. The caller waits only for chunks taken and not finished,
 * never for a helper to start. Every item's result depends on that item alone, and chunk c writes
 * only its own items' outputs, so the bytes are the same whatever the number of threads. Called with
 * the GIL released. */
#define MAX_THREADS 64
#define CHUNKS_PER_THREAD 4 /* a helper starts only when there are this many chunks per thread */

typedef void (*part_fn)(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t chunk_number);

static void run_chunk(part_fn fn, void *ctx, Py_ssize_t n, Py_ssize_t chunk, Py_ssize_t c) {
    Py_ssize_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
    fn(ctx, lo, hi, c);
}

#if PX_PTHREADS
typedef struct {
    part_fn fn;
    void *ctx; /* the caller's: touched only while running a chunk, which the caller waits for */
    Py_ssize_t n, chunk, chunks;
    atomic_llong next; /* the next chunk to take */
    pthread_mutex_t lock;
    pthread_cond_t finished_all;
    Py_ssize_t finished; /* chunks done (under lock) */
    int refs;            /* the caller and each helper started (under lock); the last one frees */
} shared_batch;

static void take_chunks(shared_batch *b) {
    Py_ssize_t done = 0;
    for (;;) {
        long long c = atomic_fetch_add(&b->next, 1);
        if (c >= b->chunks) break;
        run_chunk(b->fn, b->ctx, b->n, b->chunk, (Py_ssize_t)c);
        done++;
    }
    pthread_mutex_lock(&b->lock);
    b->finished += done;
    if (b->finished == b->chunks) pthread_cond_broadcast(&b->finished_all);
    pthread_mutex_unlock(&b->lock);
}

static int drop_ref(shared_batch *b) { /* 1 if this was the last reference */
    pthread_mutex_lock(&b->lock);
    int last = --b->refs == 0;
    pthread_mutex_unlock(&b->lock);
    return last;
}

static void free_batch(shared_batch *b) {
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->finished_all);
    free(b);
}

static void *helper_main(void *arg) {
    shared_batch *b = arg;
    take_chunks(b);
    if (drop_ref(b)) free_batch(b);
    return NULL;
}
#endif

/* Run fn over [0, n) in chunks of ``chunk``, on up to ``threads`` threads; returns the number of chunks. */
static Py_ssize_t run_batch(part_fn fn, void *ctx, Py_ssize_t n, Py_ssize_t chunk, int threads) {
    if (chunk < 1) chunk = 1;
    Py_ssize_t chunks = (n + chunk - 1) / chunk;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > chunks / CHUNKS_PER_THREAD) threads = (int)(chunks / CHUNKS_PER_THREAD);
#if PX_PTHREADS
    shared_batch *b = threads >= 2 ? malloc(sizeof *b) : NULL;
    if (b != NULL) {
        *b = (shared_batch){.fn = fn, .ctx = ctx, .n = n, .chunk = chunk, .chunks = chunks, .refs = 1};
        atomic_init(&b->next, 0);
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->finished_all, NULL);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        for (int k = 1; k < threads; k++) {
            pthread_t helper;
            pthread_mutex_lock(&b->lock);
            b->refs++;
            pthread_mutex_unlock(&b->lock);
            if (pthread_create(&helper, &attr, helper_main, b) != 0) { /* no helper: fewer hands */
                drop_ref(b);
                break;
            }
        }
        pthread_attr_destroy(&attr);
        take_chunks(b);
        pthread_mutex_lock(&b->lock);
        while (b->finished < b->chunks) pthread_cond_wait(&b->finished_all, &b->lock);
        pthread_mutex_unlock(&b->lock);
        if (drop_ref(b)) free_batch(b);
        return chunks;
    }
#endif
    for (Py_ssize_t c = 0; c < chunks; c++) run_chunk(fn, ctx, n, chunk, c);
    return chunks;
}

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
/* Finish a SHA-256 whose first ``prefix`` bytes (a multiple of 64) are already in ``st``: compress the
 * full blocks of ``msg``, then the padded tail (one or two blocks). */
static void sha256_finish(uint32_t st[8], const uint8_t *msg, size_t len, size_t prefix) {
    uint8_t tail[128];
    size_t full = len / 64;
    if (full) sha256_compress(st, msg, full);
    size_t rest = len - 64 * full;
    memset(tail, 0, sizeof tail);
    memcpy(tail, msg + 64 * full, rest);
    tail[rest] = 0x80;
    size_t tail_blocks = rest + 9 > 64 ? 2 : 1;
    uint64_t bits = (uint64_t)(prefix + len) * 8;
    for (int i = 0; i < 8; i++) tail[64 * tail_blocks - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha256_compress(st, tail, tail_blocks);
}

static void sha256_full(const uint8_t *msg, size_t len, uint8_t out[32]) {
    uint32_t st[8];
    memcpy(st, IV256, sizeof st);
    sha256_finish(st, msg, len, 0);
    digest_of(st, out);
}

/* ---------------------------------------------------------------- HMAC and HKDF ------------- */

/* The SHA-256 states after one block of (key XOR ipad) and (key XOR opad). */
static void hmac_states(const uint8_t *key, size_t key_len, uint32_t inner[8], uint32_t outer[8]) {
    uint8_t k0[64], pad[64];
    memset(k0, 0, sizeof k0);
    if (key_len > 64)
        sha256_full(key, key_len, k0);
    else
        memcpy(k0, key, key_len);
    memcpy(inner, IV256, 32);
    memcpy(outer, IV256, 32);
    for (int i = 0; i < 64; i++) pad[i] = k0[i] ^ 0x36;
    sha256_compress(inner, pad, 1);
    for (int i = 0; i < 64; i++) pad[i] = k0[i] ^ 0x5c;
    sha256_compress(outer, pad, 1);
}

static void hmac_from_states(const uint32_t inner[8], const uint32_t outer[8], const uint8_t *msg, size_t len,
                             uint8_t out[32]) {
    uint32_t st[8];
    uint8_t digest[32];
    memcpy(st, inner, sizeof st);
    sha256_finish(st, msg, len, 64);
    digest_of(st, digest);
    memcpy(st, outer, sizeof st);
    sha256_finish(st, digest, 32, 64);
    digest_of(st, out);
}

static void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len, uint8_t out[32]) {
    uint32_t inner[8], outer[8];
    hmac_states(key, key_len, inner, outer);
    hmac_from_states(inner, outer, msg, len, out);
}

static uint32_t zero_inner[8], zero_outer[8]; /* HMAC keyed with the all-zero salt (HKDF "salt none") */

#define MAX_INFO 256

/* HKDF-SHA256(IKM, salt none, info, L <= 32): extract with the precomputed zero-salt states, then one
 * expand block. */
static void hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                        size_t length) {
    uint8_t prk[32], msg[MAX_INFO + 1], t1[32];
    hmac_from_states(zero_inner, zero_outer, ikm, ikm_len, prk);
    memcpy(msg, info, info_len);
    msg[info_len] = 0x01;
    hmac_sha256(prk, 32, msg, info_len + 1, t1);
    memcpy(out, t1, length);
}

/* ---------------------------------------------------------------- AES (AES-NI, VAES) -------- */

#if PX_X86
#define AES_TARGET __attribute__((target("aes,sse2")))

AES_TARGET static inline __m128i aes_assist(__m128i key, __m128i gen) {
    gen = _mm_shuffle_epi32(gen, 0xFF);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, gen);
}

/* The odd round keys of AES-256: SubWord without RotWord or rcon (word 2 of keygenassist). */
AES_TARGET static inline __m128i aes_assist256(__m128i key, __m128i prev) {
    __m128i gen = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev, 0x00), 0xAA);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, gen);
}

#define EXPAND128(i, rcon) rk[i] = aes_assist(rk[i - 1], _mm_aeskeygenassist_si128(rk[i - 1], rcon))
#define EXPAND256(i, rcon)                                                          \
    rk[i] = aes_assist(rk[i - 2], _mm_aeskeygenassist_si128(rk[i - 1], rcon)); \
    if (i < 14) rk[i + 1] = aes_assist256(rk[i - 1], rk[i])

/* Round keys of a 16- or 32-byte key; returns the number of rounds (10 or 14). */
AES_TARGET static int aes_expand(const uint8_t *key, Py_ssize_t width, __m128i rk[15]) {
    rk[0] = _mm_loadu_si128((const __m128i *)key);
    if (width == 16) {
        EXPAND128(1, 0x01);
        EXPAND128(2, 0x02);
        EXPAND128(3, 0x04);
        EXPAND128(4, 0x08);
        EXPAND128(5, 0x10);
        EXPAND128(6, 0x20);
        EXPAND128(7, 0x40);
        EXPAND128(8, 0x80);
        EXPAND128(9, 0x1b);
        EXPAND128(10, 0x36);
        return 10;
    }
    rk[1] = _mm_loadu_si128((const __m128i *)(key + 16));
    EXPAND256(2, 0x01);
    EXPAND256(4, 0x02);
    EXPAND256(6, 0x04);
    EXPAND256(8, 0x08);
    EXPAND256(10, 0x10);
    EXPAND256(12, 0x20);
    EXPAND256(14, 0x40);
    return 14;
}

AES_TARGET static inline __m128i aes_encrypt1(const __m128i *rk, int rounds, __m128i b) {
    b = _mm_xor_si128(b, rk[0]);
    for (int r = 1; r < rounds; r++) b = _mm_aesenc_si128(b, rk[r]);
    return _mm_aesenclast_si128(b, rk[rounds]);
}

/* ECB over ``count`` blocks, 8 in flight so the AES unit's pipeline stays full. */
AES_TARGET static void ecb_blocks_aesni(const __m128i *rk, int rounds, const uint8_t *in, uint8_t *out,
                                        Py_ssize_t count) {
    Py_ssize_t j = 0;
    for (; j + 8 <= count; j += 8) {
        __m128i b[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            b[k] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(in + 16 * (j + k))), rk[0]);
        for (int r = 1; r < rounds; r++) {
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) b[k] = _mm_aesenc_si128(b[k], rk[r]);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            _mm_storeu_si128((__m128i *)(out + 16 * (j + k)), _mm_aesenclast_si128(b[k], rk[rounds]));
    }
    for (; j < count; j++)
        _mm_storeu_si128((__m128i *)(out + 16 * j),
                         aes_encrypt1(rk, rounds, _mm_loadu_si128((const __m128i *)(in + 16 * j))));
}

/* The same with VAES: two blocks per 256-bit instruction, 16 blocks in flight. */
__attribute__((target("vaes,avx2,aes"))) static void ecb_blocks_vaes(const __m128i *rk128, int rounds,
                                                                    const uint8_t *in, uint8_t *out,
                                                                    Py_ssize_t count) {
    __m256i rk[15];
    for (int r = 0; r <= rounds; r++) rk[r] = _mm256_broadcastsi128_si256(rk128[r]);
    Py_ssize_t j = 0;
    for (; j + 16 <= count; j += 16) {
        __m256i b[8];
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            b[k] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(in + 16 * (j + 2 * k))), rk[0]);
        for (int r = 1; r < rounds; r++) {
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) b[k] = _mm256_aesenc_epi128(b[k], rk[r]);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++)
            _mm256_storeu_si256((__m256i *)(out + 16 * (j + 2 * k)), _mm256_aesenclast_epi128(b[k], rk[rounds]));
    }
    for (; j + 2 <= count; j += 2) {
        __m256i b = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(in + 16 * j)), rk[0]);
        for (int r = 1; r < rounds; r++) b = _mm256_aesenc_epi128(b, rk[r]);
        _mm256_storeu_si256((__m256i *)(out + 16 * j), _mm256_aesenclast_epi128(b, rk[rounds]));
    }
    if (j < count)
        _mm_storeu_si128((__m128i *)(out + 16 * j),
                         aes_encrypt1(rk128, rounds, _mm_loadu_si128((const __m128i *)(in + 16 * j))));
}

typedef void (*ecb_blocks_fn)(const __m128i *rk, int rounds, const uint8_t *in, uint8_t *out, Py_ssize_t count);
static ecb_blocks_fn ecb_blocks = ecb_blocks_aesni;
#endif

/* Add ``step`` to a 128-bit big-endian counter block. */
static void counter_add(const uint8_t in[16], uint64_t step, uint8_t out[16]) {
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 8; i++) {
        hi = (hi << 8) | in[i];
        lo = (lo << 8) | in[8 + i];
    }
    uint64_t sum = lo + step;
    hi += sum < lo;
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)hi;
        out[8 + i] = (uint8_t)sum;
        hi >>= 8;
        sum >>= 8;
    }
}

/* ---------------------------------------------------------------- index probe --------------- */

typedef struct {
    const uint64_t *keys;    /* U sorted 64-bit prefixes (first 8 bytes, native order) */
    const uint8_t *ids;      /* U * L unique IDs in the same order */
    const uint8_t *bitmap1;  /* 1 << bits flags over the top bits, 8 a byte, little bit order */
    const uint8_t *bitmap2;  /* 1 << bits flags over the next bits, packed the same way */
    const uint32_t *slices;  /* SLICES + 1 ends: keys with top 16 bits t are keys[slices[t]:slices[t+1]] */
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
    /* the slice of keys sharing the top 16 bits (~1.5 keys at 100,000 IDs), then a search inside it */
    Py_ssize_t lo = ix->slices[k >> 48], hi = ix->slices[(k >> 48) + 1];
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
#define SLICES 65536 /* one slice per value of a key's top 16 bits */

static int index_from(Py_buffer *keys, Py_buffer *ids, Py_buffer *bm1, Py_buffer *bm2, Py_buffer *slices,
                      int bits, Py_ssize_t length, index_t *ix) {
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
    if (slices->len != 4 * (SLICES + 1)) {
        PyErr_SetString(PyExc_ValueError, "index slices must be 65537 uint32 ends");
        return -1;
    }
    const uint32_t *ends = (const uint32_t *)slices->buf;
    if (ends[0] != 0 || ends[SLICES] != (uint32_t)(keys->len / 8)) {
        PyErr_SetString(PyExc_ValueError, "index slices must run from 0 to the number of keys");
        return -1;
    }
    for (Py_ssize_t t = 0; t < SLICES; t++)
        if (ends[t] > ends[t + 1]) {
            PyErr_SetString(PyExc_ValueError, "index slice ends must not decrease");
            return -1;
        }
    ix->slices = ends;
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

static PyObject *fail(Py_buffer *views, int n, PyObject *type, const char *message) {
    release(views, n);
    PyErr_SetString(type, message);
    return NULL;
}

static PyObject *require_aesni(void) {
    PyErr_SetString(PyExc_RuntimeError, "this CPU has no AES-NI: use the Python reference backend");
    return NULL;
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

/* Every batch binding takes an optional last argument, ``threads`` (default 1): the most threads its
 * batch runs on (run_batch: chunks of tens of microseconds of work, helpers only for a batch of at least
 * CHUNKS_PER_THREAD chunks a thread, so a small batch, e.g. one key, stays on the calling thread). */
#define CHUNK_KEYS 64      /* HMAC/HKDF keys or SHA-256 rows a chunk (~25 us) */
#define CHUNK_BLOCKS 2048  /* AES blocks a chunk */
#define CHUNK_PROBES 4096  /* probes a chunk */

static int check_threads(int threads) {
    if (threads < 1) {
        PyErr_Format(PyExc_ValueError, "threads must be at least 1, got %d", threads);
        return -1;
    }
    return 0;
}

static Py_ssize_t at_least_one(Py_ssize_t value) { return value < 1 ? 1 : value; }

PyDoc_STRVAR(sha256_rows_doc,
             "sha256_rows(rows, width, out[, threads]): SHA-256 of every row (n*width bytes) into out (n*32).");

typedef struct {
    const uint8_t *in;
    uint8_t *out;
    Py_ssize_t width;
} rows_job;

static void sha256_rows_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    const rows_job *j = ctx;
    for (Py_ssize_t i = lo; i < hi; i++) sha256_full(j->in + i * j->width, (size_t)j->width, j->out + 32 * i);
}

static PyObject *py_sha256_rows(PyObject *self, PyObject *args) {
    Py_buffer v[2] = {{0}};
    Py_ssize_t width;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "y*nw*|i", &v[0], &width, &v[1], &threads) || check_threads(threads) < 0) {
        release(v, 2);
        return NULL;
    }
    if (width < 0 || (width == 0 ? v[0].len != 0 : v[0].len % width))
        return fail(v, 2, PyExc_ValueError, "rows must be n*width bytes");
    Py_ssize_t n = width ? v[0].len / width : v[1].len / 32;
    if (v[1].len != 32 * n) return fail(v, 2, PyExc_ValueError, "out must be n*32 bytes");
    rows_job job = {v[0].buf, v[1].buf, width};
    Py_ssize_t chunk = CHUNK_KEYS;
    Py_BEGIN_ALLOW_THREADS;
    run_batch(sha256_rows_part, &job, n, chunk, threads);
    Py_END_ALLOW_THREADS;
    release(v, 2);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(sha256_chain_doc,
             "sha256_chain(seeds, length, select, out[, threads]): for every 32-byte seed s_0, the links s_0 .. "
             "s_{length-1} (s_{i+1} = SHA-256(s_i)), each cut to the bytes ``select`` names, into out "
             "(n*length*len(select) bytes).");

typedef struct {
    const uint8_t *seeds, *select;
    uint8_t *out;
    Py_ssize_t length, keep;
} chain_job;

static void sha256_chain_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    const chain_job *j = ctx;
    Py_ssize_t length = j->length, keep = j->keep;
    for (Py_ssize_t i = lo; i < hi; i++) {
        uint8_t state[32];
        uint32_t st[8];
        memcpy(state, j->seeds + 32 * i, 32);
        uint8_t *dst = j->out + i * length * keep;
        for (Py_ssize_t s = 0; s < length; s++) {
            for (Py_ssize_t b = 0; b < keep; b++) dst[keep * s + b] = state[j->select[b]];
            if (s + 1 == length) break;
            memcpy(st, IV256, sizeof st);
            sha256_finish(st, state, 32, 0);
            digest_of(st, state);
        }
    }
}

static PyObject *py_sha256_chain(PyObject *self, PyObject *args) {
    Py_buffer v[3] = {{0}};
    Py_ssize_t length;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "y*ny*w*|i", &v[0], &length, &v[1], &v[2], &threads) ||
        check_threads(threads) < 0) {
        release(v, 3);
        return NULL;
    }
    Py_ssize_t n = v[0].len / 32, keep = v[1].len;
    const uint8_t *select = v[1].buf;
    if (v[0].len % 32 || length < 0 || keep < 1 || keep > 32)
        return fail(v, 3, PyExc_ValueError, "seeds must be n*32 bytes, length >= 0, select 1..32 bytes");
    for (Py_ssize_t b = 0; b < keep; b++)
        if (select[b] >= 32) return fail(v, 3, PyExc_ValueError, "select names bytes 0..31");
    if (length > 0 && n > PY_SSIZE_T_MAX / keep / length)
        return fail(v, 3, PyExc_OverflowError, "n*length*len(select) bytes of output overflow Py_ssize_t");
    if (v[2].len != n * length * keep) return fail(v, 3, PyExc_ValueError, "out must be n*length*len(select) bytes");
    chain_job job = {v[0].buf, select, v[2].buf, length, keep};
    Py_ssize_t chunk = at_least_one(CHUNK_KEYS / at_least_one(length));
    Py_BEGIN_ALLOW_THREADS;
    run_batch(sha256_chain_part, &job, n, chunk, threads);
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(hmac_sha256_doc,
             "hmac_sha256(keys, key_length, message, out[, threads]): HMAC-SHA256(key, message) under every key "
             "(n*key_length bytes) into out (n*32).");

typedef struct {
    const uint8_t *in, *info;
    uint8_t *out;
    Py_ssize_t in_len, info_len, out_len;
} keyed_job;

static void hmac_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    const keyed_job *j = ctx;
    for (Py_ssize_t i = lo; i < hi; i++)
        hmac_sha256(j->in + i * j->in_len, (size_t)j->in_len, j->info, (size_t)j->info_len, j->out + 32 * i);
}

static PyObject *py_hmac_sha256(PyObject *self, PyObject *args) {
    Py_buffer v[3] = {{0}};
    Py_ssize_t klen;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "y*ny*w*|i", &v[0], &klen, &v[1], &v[2], &threads) ||
        check_threads(threads) < 0) {
        release(v, 3);
        return NULL;
    }
    if (klen < 1 || v[0].len % klen) return fail(v, 3, PyExc_ValueError, "keys must be n*key_length bytes");
    Py_ssize_t n = v[0].len / klen;
    if (v[2].len != 32 * n) return fail(v, 3, PyExc_ValueError, "out must be n*32 bytes");
    keyed_job job = {v[0].buf, v[1].buf, v[2].buf, klen, v[1].len, 32};
    Py_ssize_t chunk = CHUNK_KEYS;
    Py_BEGIN_ALLOW_THREADS;
    run_batch(hmac_part, &job, n, chunk, threads);
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(hkdf_sha256_doc,
             "hkdf_sha256(ikms, ikm_length, info, length, out[, threads]): HKDF-SHA256 (salt none, L = length "
             "<= 32) of every IKM (n*ikm_length bytes) into out (n*length).");

static void hkdf_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    const keyed_job *j = ctx;
    for (Py_ssize_t i = lo; i < hi; i++)
        hkdf_sha256(j->in + i * j->in_len, (size_t)j->in_len, j->info, (size_t)j->info_len,
                    j->out + i * j->out_len, (size_t)j->out_len);
}

static PyObject *py_hkdf_sha256(PyObject *self, PyObject *args) {
    Py_buffer v[3] = {{0}};
    Py_ssize_t ilen, length;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "y*ny*nw*|i", &v[0], &ilen, &v[1], &length, &v[2], &threads) ||
        check_threads(threads) < 0) {
        release(v, 3);
        return NULL;
    }
    if (ilen < 1 || v[0].len % ilen || v[1].len > MAX_INFO || length < 1 || length > 32)
        return fail(v, 3, PyExc_ValueError, "ikms must be n*ikm_length bytes, info at most 256 bytes, length 1..32");
    Py_ssize_t n = v[0].len / ilen;
    if (v[2].len != n * length) return fail(v, 3, PyExc_ValueError, "out must be n*length bytes");
    keyed_job job = {v[0].buf, v[1].buf, v[2].buf, ilen, v[1].len, length};
    Py_ssize_t chunk = CHUNK_KEYS;
    Py_BEGIN_ALLOW_THREADS;
    run_batch(hkdf_part, &job, n, chunk, threads);
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
}

/* Check the common AES arguments: keys n*width, blocks u*per*16, rows n int64 in [0, u). */
static int check_rows(Py_buffer *keys, Py_ssize_t width, Py_buffer *blocks, Py_ssize_t per, Py_buffer *rows,
                      Py_ssize_t *n_out) {
    if (width != 16 && width != 32) {
        PyErr_SetString(PyExc_ValueError, "AES keys are 16 or 32 bytes");
        return -1;
    }
    if (keys->len % width || per < 1 || blocks->len % (16 * per)) {
        PyErr_SetString(PyExc_ValueError, "need keys n*width bytes and blocks u*per*16 bytes");
        return -1;
    }
    Py_ssize_t n = keys->len / width, u = blocks->len / (16 * per);
    if (rows->len != 8 * n) {
        PyErr_SetString(PyExc_ValueError, "need one int64 row per key");
        return -1;
    }
    const int64_t *r = rows->buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (r[i] < 0 || r[i] >= u) {
            PyErr_SetString(PyExc_ValueError, "rows must index the blocks");
            return -1;
        }
    *n_out = n;
    return 0;
}

#if PX_X86
/* One AES-ECB job over a batch of keys: key i encrypts row rows[i] of ``per`` blocks; with an index, the
 * first counts[i] output blocks are probed instead of stored (positions i * per + j; each chunk writes
 * its finds into its own region of the outputs, from its first key's position on, and counts them in
 * found[c]). */
typedef struct {
    const uint8_t *keys, *in;
    const int64_t *rows, *counts;
    uint8_t *out;
    Py_ssize_t width, per;
    const index_t *ix;
    int64_t *pos, *uniq;
    Py_ssize_t *found;
} ecb_job;

static void aes_ecb_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    const ecb_job *j = ctx;
    for (Py_ssize_t i = lo; i < hi; i++) {
        __m128i rk[15];
        int rounds = aes_expand(j->keys + j->width * i, j->width, rk);
        ecb_blocks(rk, rounds, j->in + j->rows[i] * j->per * 16, j->out + i * j->per * 16, j->per);
    }
}
#endif

PyDoc_STRVAR(aes_ecb_doc,
             "aes_ecb(keys, width, blocks, per, rows, out[, threads]): key i (16 or 32 bytes: AES-128 or -256) "
             "encrypts row rows[i] of blocks (u rows of per 16-byte blocks) into row i of out (n*per*16 bytes).");

static PyObject *py_aes_ecb(PyObject *self, PyObject *args) {
#if PX_X86
    Py_buffer v[4] = {{0}};
    Py_ssize_t width, per, n;
    int threads = 1;
    if (!have_aesni) return require_aesni();
    if (!PyArg_ParseTuple(args, "y*ny*ny*w*|i", &v[0], &width, &v[1], &per, &v[2], &v[3], &threads) ||
        check_threads(threads) < 0) {
        release(v, 4);
        return NULL;
    }
    if (check_rows(&v[0], width, &v[1], per, &v[2], &n) < 0) {
        release(v, 4);
        return NULL;
    }
    if (n > PY_SSIZE_T_MAX / 16 / per || v[3].len != n * per * 16)
        return fail(v, 4, PyExc_ValueError, "out must be n*per*16 bytes");
    ecb_job job = {.keys = v[0].buf, .in = v[1].buf, .rows = v[2].buf, .out = v[3].buf, .width = width, .per = per};
    Py_ssize_t chunk = at_least_one(CHUNK_BLOCKS / per);
    Py_BEGIN_ALLOW_THREADS;
    run_batch(aes_ecb_part, &job, n, chunk, threads);
    Py_END_ALLOW_THREADS;
    release(v, 4);
    Py_RETURN_NONE;
#else
    return require_aesni();
#endif
}

PyDoc_STRVAR(aes_ctr_doc,
             "aes_ctr(keys, width, counters, length, out[, threads]): ``length`` bytes of AES-CTR keystream "
             "under every key (n*width bytes) from its initial 128-bit big-endian counter block (n*16 bytes), "
             "into out (n*length bytes).");

#define CTR_BATCH 64

#if PX_X86
typedef struct {
    const uint8_t *keys, *counters;
    uint8_t *out;
    Py_ssize_t width, length;
} ctr_job;

static void aes_ctr_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    const ctr_job *j = ctx;
    Py_ssize_t length = j->length;
    for (Py_ssize_t i = lo; i < hi; i++) {
        __m128i rk[15];
        uint8_t ctr[CTR_BATCH * 16], stream[CTR_BATCH * 16];
        int rounds = aes_expand(j->keys + j->width * i, j->width, rk);
        for (Py_ssize_t done = 0, block = 0; done < length; block += CTR_BATCH) {
            Py_ssize_t want = (length - done + 15) / 16;
            if (want > CTR_BATCH) want = CTR_BATCH;
            for (Py_ssize_t k = 0; k < want; k++) counter_add(j->counters + 16 * i, (uint64_t)(block + k), ctr + 16 * k);
            ecb_blocks(rk, rounds, ctr, stream, want);
            Py_ssize_t take = length - done < 16 * want ? length - done : 16 * want;
            memcpy(j->out + i * length + done, stream, (size_t)take);
            done += take;
        }
    }
}
#endif

static PyObject *py_aes_ctr(PyObject *self, PyObject *args) {
#if PX_X86
    Py_buffer v[3] = {{0}};
    Py_ssize_t width, length;
    int threads = 1;
    if (!have_aesni) return require_aesni();
    if (!PyArg_ParseTuple(args, "y*ny*nw*|i", &v[0], &width, &v[1], &length, &v[2], &threads) ||
        check_threads(threads) < 0) {
        release(v, 3);
        return NULL;
    }
    if ((width != 16 && width != 32) || v[0].len % width || length < 0)
        return fail(v, 3, PyExc_ValueError, "need keys n*16 or n*32 bytes and length >= 0");
    Py_ssize_t n = v[0].len / width;
    if (v[1].len != 16 * n || (length && n > PY_SSIZE_T_MAX / length) || v[2].len != n * length)
        return fail(v, 3, PyExc_ValueError, "need counters n*16 bytes and out n*length bytes");
    ctr_job job = {v[0].buf, v[1].buf, v[2].buf, width, length};
    Py_ssize_t chunk = at_least_one(CHUNK_BLOCKS / at_least_one(length / 16));
    Py_BEGIN_ALLOW_THREADS;
    run_batch(aes_ctr_part, &job, n, chunk, threads);
    Py_END_ALLOW_THREADS;
    release(v, 3);
    Py_RETURN_NONE;
#else
    return require_aesni();
#endif
}

static int parse_index(Py_buffer *v, int bits, Py_ssize_t length, index_t *ix) {
    return index_from(&v[0], &v[1], &v[2], &v[3], &v[4], bits, length, ix);
}

/* Move each chunk's finds (written from its own start, c * stride) up behind the previous chunk's: the
 * outputs then read as if one thread had probed the whole batch in order. Returns the total found. */
static Py_ssize_t gather_chunks(int64_t *pos, int64_t *uniq, const Py_ssize_t *found, Py_ssize_t chunks,
                                Py_ssize_t stride) {
    Py_ssize_t total = 0;
    for (Py_ssize_t c = 0; c < chunks; c++) {
        Py_ssize_t from = c * stride;
        if (from != total) {
            memmove(pos + total, pos + from, (size_t)found[c] * sizeof *pos);
            memmove(uniq + total, uniq + from, (size_t)found[c] * sizeof *uniq);
        }
        total += found[c];
    }
    return total;
}

/* found[] for a probing batch of n items in chunks of ``chunk``, or NULL with MemoryError set. */
static Py_ssize_t *found_counts(Py_ssize_t n, Py_ssize_t chunk) {
    Py_ssize_t *found = PyMem_Calloc((size_t)((n + chunk - 1) / chunk + 1), sizeof *found);
    if (found == NULL) PyErr_NoMemory();
    return found;
}

typedef struct {
    const uint8_t *cand;
    Py_ssize_t length;
    const index_t *ix;
    int64_t *pos, *uniq;
    Py_ssize_t *found;
} probe_job;

static void probe_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    probe_job *j = ctx;
    Py_ssize_t found = 0;
    int64_t *pos = j->pos + lo, *uniq = j->uniq + lo;
    for (Py_ssize_t i = lo; i < hi; i++) {
        Py_ssize_t u = probe_one(j->ix, j->cand + i * j->length);
        if (u >= 0) {
            pos[found] = i;
            uniq[found++] = u;
        }
    }
    j->found[c] = found;
}

PyDoc_STRVAR(probe_doc,
             "probe(candidates, length, keys, ids, bitmap1, bitmap2, slices, bits, out_pos, out_unique"
             "[, threads]) -> count: the positions of the candidates (n*length bytes) found in the index "
             "(sorted uint64 keys, unique IDs, two bitmaps of 1 << bits flags packed 8 a byte, 65537 uint32 "
             "slice ends over the keys' top 16 bits), with their unique index (int64 outputs of n entries "
             "each), in candidate order; returns how many were found.");

static PyObject *py_probe(PyObject *self, PyObject *args) {
    Py_buffer v[8] = {{0}};
    Py_ssize_t length;
    int bits, threads = 1;
    index_t ix;
    if (!PyArg_ParseTuple(args, "y*ny*y*y*y*y*iw*w*|i", &v[0], &length, &v[1], &v[2], &v[3], &v[4], &v[5], &bits,
                          &v[6], &v[7], &threads) ||
        check_threads(threads) < 0) {
        release(v, 8);
        return NULL;
    }
    if (parse_index(&v[1], bits, length, &ix) < 0) {
        release(v, 8);
        return NULL;
    }
    Py_ssize_t n = v[0].len / length;
    if (v[0].len % length || v[6].len != 8 * n || v[7].len != 8 * n)
        return fail(v, 8, PyExc_ValueError, "candidates must be n*length bytes and outputs n int64 each");
    Py_ssize_t found = 0, chunk = CHUNK_PROBES;
    probe_job job = {.cand = v[0].buf, .length = length, .ix = &ix, .pos = v[6].buf, .uniq = v[7].buf,
                     .found = found_counts(n, chunk)};
    if (job.found == NULL) {
        release(v, 8);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS;
    if (ix.count) found = gather_chunks(job.pos, job.uniq, job.found, run_batch(probe_part, &job, n, chunk, threads),
                                        chunk);
    Py_END_ALLOW_THREADS;
    PyMem_Free(job.found);
    release(v, 8);
    return PyLong_FromSsize_t(found);
}

#define MAX_PROBE_ROW 256

#if PX_X86
static void aes_ecb_probe_part(void *ctx, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t c) {
    ecb_job *j = ctx;
    Py_ssize_t found = 0, per = j->per;
    int64_t *pos = j->pos + lo * per, *uniq = j->uniq + lo * per;
    for (Py_ssize_t i = lo; i < hi; i++) {
        __m128i rk[15];
        uint8_t row[MAX_PROBE_ROW * 16];
        Py_ssize_t count = j->counts[i] < 0 ? 0 : j->counts[i] > per ? per : j->counts[i];
        int rounds = aes_expand(j->keys + j->width * i, j->width, rk);
        ecb_blocks(rk, rounds, j->in + j->rows[i] * per * 16, row, count);
        for (Py_ssize_t b = 0; b < count; b++) {
            Py_ssize_t u = probe_one(j->ix, row + 16 * b);
            if (u >= 0) {
                pos[found] = i * per + b;
                uniq[found++] = u;
            }
        }
    }
    j->found[c] = found;
}
#endif

PyDoc_STRVAR(aes_ecb_probe_doc,
             "aes_ecb_probe(keys, width, blocks, per, rows, counts, keys64, ids, bitmap1, bitmap2, slices, bits, "
             "out_pos, out_unique[, threads]) -> count: aes_ecb, then probe the (16-byte) index with the first "
             "counts[i] (int64) blocks of each key's row while they are in L1; positions are key * per + "
             "block, in that order. per <= 256.");

static PyObject *py_aes_ecb_probe(PyObject *self, PyObject *args) {
#if PX_X86
    Py_buffer v[11] = {{0}};
    Py_ssize_t width, per, n;
    int bits, threads = 1;
    index_t ix;
    if (!have_aesni) return require_aesni();
    if (!PyArg_ParseTuple(args, "y*ny*ny*y*y*y*y*y*y*iw*w*|i", &v[0], &width, &v[1], &per, &v[2], &v[3], &v[4],
                          &v[5], &v[6], &v[7], &v[8], &bits, &v[9], &v[10], &threads) ||
        check_threads(threads) < 0) {
        release(v, 11);
        return NULL;
    }
    if (check_rows(&v[0], width, &v[1], per, &v[2], &n) < 0 || parse_index(&v[4], bits, 16, &ix) < 0) {
        release(v, 11);
        return NULL;
    }
    if (per > MAX_PROBE_ROW || v[3].len != 8 * n || v[9].len != 8 * per * n || v[10].len != 8 * per * n)
        return fail(v, 11, PyExc_ValueError, "need per <= 256, counts n int64, outputs n*per int64 each");
    Py_ssize_t found = 0, chunk = at_least_one(CHUNK_BLOCKS / per);
    ecb_job job = {.keys = v[0].buf, .in = v[1].buf, .rows = v[2].buf, .counts = v[3].buf, .width = width,
                   .per = per, .ix = &ix, .pos = v[9].buf, .uniq = v[10].buf, .found = found_counts(n, chunk)};
    if (job.found == NULL) {
        release(v, 11);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS;
    if (ix.count)
        found = gather_chunks(job.pos, job.uniq, job.found, run_batch(aes_ecb_probe_part, &job, n, chunk, threads),
                              chunk * per);
    Py_END_ALLOW_THREADS;
    PyMem_Free(job.found);
    release(v, 11);
    return PyLong_FromSsize_t(found);
#else
    return require_aesni();
#endif
}

PyDoc_STRVAR(features_doc, "features() -> dict: what this CPU offers and which code runs.");

static const char *aes_name(void) {
#if PX_X86
    return ecb_blocks == ecb_blocks_vaes ? "vaes" : "aesni";
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
             "set_aes(name) -> str: run AES with 'aesni' or 'vaes' (for tests); returns the previous one.");

static PyObject *py_set_aes(PyObject *self, PyObject *args) {
    const char *name;
    if (!PyArg_ParseTuple(args, "s", &name)) return NULL;
    const char *previous = aes_name();
#if PX_X86
    if (strcmp(name, "aesni") == 0 && have_aesni) {
        ecb_blocks = ecb_blocks_aesni;
        return PyUnicode_FromString(previous);
    }
    if (strcmp(name, "vaes") == 0 && have_vaes) {
        ecb_blocks = ecb_blocks_vaes;
        return PyUnicode_FromString(previous);
    }
#endif
    PyErr_Format(PyExc_ValueError, "unknown or unsupported AES implementation %s", name);
    return NULL;
}

PyDoc_STRVAR(set_sha256_doc,
             "set_sha256(name) -> str: use the 'portable' or 'shani' compression (for tests); returns the "
             "previous one.");

static void init_zero_salt(void) {
    uint8_t zero[32] = {0};
    hmac_states(zero, 32, zero_inner, zero_outer);
}

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
    {"sha256", py_sha256, METH_VARARGS, sha256_doc},
    {"sha256_rows", py_sha256_rows, METH_VARARGS, sha256_rows_doc},
    {"sha256_chain", py_sha256_chain, METH_VARARGS, sha256_chain_doc},
    {"hmac_sha256", py_hmac_sha256, METH_VARARGS, hmac_sha256_doc},
    {"hkdf_sha256", py_hkdf_sha256, METH_VARARGS, hkdf_sha256_doc},
    {"aes_ecb", py_aes_ecb, METH_VARARGS, aes_ecb_doc},
    {"aes_ctr", py_aes_ctr, METH_VARARGS, aes_ctr_doc},
    {"probe", py_probe, METH_VARARGS, probe_doc},
    {"aes_ecb_probe", py_aes_ecb_probe, METH_VARARGS, aes_ecb_probe_doc},
    {"features", py_features, METH_NOARGS, features_doc},
    {"set_sha256", py_set_sha256, METH_VARARGS, set_sha256_doc},
    {"set_aes", py_set_aes, METH_VARARGS, set_aes_doc},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "Batch crypto primitives in C (see proximity.crypto.native).", -1, methods,
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
    if (have_vaes) ecb_blocks = ecb_blocks_vaes;
#endif
}

PyMODINIT_FUNC PyInit__native(void) {
    detect_cpu();
    init_zero_salt();
    return PyModule_Create(&module);
}
