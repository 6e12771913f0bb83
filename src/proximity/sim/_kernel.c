/* proximity.sim._kernel: the simulator's packet kernel, one pass over (scanner, advertiser) pairs.
 *
 * The numpy path (proximity.sim.world, World._heard_numpy with PairReach.pairs) materialises every
 * candidate pair within the search radius as arrays, then draws per packet: at city scale that is
 * hundreds of thousands of pairs a simulated second, about 1 % of them heard, and the arrays, not the
 * arithmetic, were the cost. This kernel does the same work pair by pair without intermediate arrays:
 * advertisers are binned once per call into square cells, loudest transmitter first within each cell;
 * each scanner walks the cells within its largest radius and stops in a cell at the first advertiser
 * whose pair radius (the same table and linear interpolation as PairReach.radius) surely cannot reach
 * the cell; the pair radius test reads per-distance-bucket edges and interpolates only in a bucket's
 * sliver between them (reach_edges); each candidate within its own radius gets the numpy path's
 * draws (the same splitmix64 hashes, channel formulas and order of floating-point operations): the
 * link's level (channel.link_level) and whether the packet is heard with the fading integrated out
 * (channel.heard_chance), then a heard packet's fading given that it was heard (channel.heard_rssi).
 * A cheap conservative bound (Bounds) drops most candidates before those exact draws without changing
 * which are heard. Each row in reach takes the walk's tests, the pair radius test and the bound one by one,
 * cheapest first (consider); where the CPU has AVX-512, the walk lists a scanner's rows in reach (8 rows of
 * a cell per compare) and a branch-free loop screens the whole list with the walk's tests and the bound,
 * 8 rows at a time (screen_wide: 98 % of the rows are dropped, at random, and branches on them cost more
 * than doing every row; an advertiser's numbers are one 64-byte line, loaded and transposed), and only
 * the kept go on.
 * Other people's bodies are counted on the heard links (bodies(), as sim/bodies.py), and the packets
 * come back final, with their level and uniform, in the order of ``scan`` then ``adv``.
 * The numpy path and the kernel agree up to the last bits of libm (tests/test_sim_kernel.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)
#define NORMAL_SALT 0x5DEECE66DULL

enum {
    P_START, P_DT, P_RSSI1M, P_NEAR_EXP, P_FAR_EXP, P_BREAK, P_MIN_D, P_ENC_SIGMA, P_FAR_SHADOW,
    P_ENC_SECONDS, P_FADE_SIGMA, P_FADE_SLOPE, P_FAR_FADE, P_PACKET_LOSS, P_SENS, P_WIDTH, P_SPAN,
    P_BODY_LOSS, P_CORRIDOR, P_COUNT
};
enum { K_OFFSET, K_ENCOUNTER, K_RADIO, K_FADING, K_COUNT };

static inline uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

static inline int64_t floor_int(double v) { /* (int64_t)floor(v) for |v| < 2**62, without a libm call */
    int64_t i = (int64_t)v;
    return i - (v < (double)i);
}

/* the agent of point g (step * n + agent): without a 64-bit division in the usual one-step call */
static inline int64_t agent_of(int64_t g, int64_t n) { return g < n ? g : g % n; }

/* streams.hash_uniform(key, a, b, c), split so that its first step can be done once per scanner or
 * advertiser: first(key, a), then rest(first, b, c) */
static inline uint64_t first(uint64_t key, int64_t a) { return mix(key ^ ((uint64_t)a + GOLDEN)); }

static inline uint64_t rest(uint64_t x, int64_t b, int64_t c) {
    x = mix(x ^ ((uint64_t)b + GOLDEN));
    return mix(x ^ ((uint64_t)c + GOLDEN));
}

static inline double to_uniform(uint64_t x) { return ((double)(x >> 11) + 0.5) / 9007199254740992.0; /* 2**53 */ }

static inline double uniform3(uint64_t key, int64_t a, int64_t b, int64_t c) {
    return to_uniform(rest(first(key, a), b, c));
}

/* streams.normal_quantile: Acklam's approximation, the same expressions in the same order */
static const double QA[6] = {-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
                             1.383577518672690e02,  -3.066479806614716e01, 2.506628277459239e00};
static const double QB[5] = {-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
                             6.680131188771972e01,  -1.328068155288572e01};
static const double QC[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
                             -2.549671010243111e00,  4.374664141464968e00,   2.938163982698783e00};
static const double QD[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
                             3.754408661907416e00};

static inline double quantile(double p) {
    if (p >= 0.02425 && p <= 1.0 - 0.02425) {
        double q = p - 0.5, r = q * q;
        return ((((((QA[0] * r + QA[1]) * r + QA[2]) * r + QA[3]) * r + QA[4]) * r + QA[5]) * q) /
               (((((QB[0] * r + QB[1]) * r + QB[2]) * r + QB[3]) * r + QB[4]) * r + 1.0);
    }
    double sign = p < 0.02425 ? 1.0 : -1.0;
    double t = sqrt(-2.0 * log(p < 0.02425 ? p : 1.0 - p));
    return sign * ((((((QC[0] * t + QC[1]) * t + QC[2]) * t + QC[3]) * t + QC[4]) * t + QC[5]) /
                   ((((QD[0] * t + QD[1]) * t + QD[2]) * t + QD[3]) * t + 1.0));
}

/* channel._phi: Abramowitz & Stegun 7.1.26 */
static inline double phi(double z) {
    double x = fabs(z) / sqrt(2.0);
    double t = 1.0 / (1.0 + 0.3275911 * x);
    double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    double upper = 0.5 * poly * exp(-x * x);
    return z >= 0 ? 1.0 - upper : upper;
}

/* np.interp(x, grid, table) on an evenly spaced grid; slope[j]: (table[j+1] - table[j]) / (grid[j+1] - grid[j]) */
static inline double interp(double x, const double *grid, const double *table, const double *slope, Py_ssize_t m,
                            double step) {
    if (x <= grid[0]) return table[0];
    if (x >= grid[m - 1]) return table[m - 1];
    Py_ssize_t j = (Py_ssize_t)((x - grid[0]) * (1.0 / step));
    if (j > m - 2) j = m - 2;
    while (j > 0 && grid[j] > x) j--;
    while (j < m - 2 && grid[j + 1] <= x) j++;
    if (x == grid[j]) return table[j];
    return slope[j] * (x - grid[j]) + table[j];
}

typedef struct {
    int64_t i, j;
    double at, level, rssi, d, u;
} Packet;

typedef struct {
    Packet *rows;
    Py_ssize_t size, capacity;
} Out;

static int push(Out *out, Packet p) {
    if (out->size == out->capacity) {
        Py_ssize_t cap = out->capacity ? 2 * out->capacity : 4096;
        Packet *rows = realloc(out->rows, (size_t)cap * sizeof(Packet));
        if (!rows) return -1;
        out->rows = rows;
        out->capacity = cap;
    }
    out->rows[out->size++] = p;
    return 0;
}

typedef struct {
    const double *pos;
    const int64_t *scan, *adv;
    Py_ssize_t n_scan, n_adv;
    int64_t n, first;
    const double *reach_tx, *reach_rx, *grid, *table;
    Py_ssize_t m;
    const double *dev_tx, *dev_rx, *enter;
    const int8_t *carriage;
    int64_t hours;
    const double *loss, *p;
    const uint64_t *keys;
    const int64_t *present; /* indices into pos of everyone present (bodies), n_present of them */
    Py_ssize_t n_present;
    const struct Bounds *bounds;
} Inputs;

/* one advertiser's numbers that a scanner's tests read, in one 64-byte line (the advertisers are kept in
 * cell order, each cell's loudest first; the AVX-512 screen loads 8 rows and transposes them) */
typedef struct {
    double x, y, loud, enter, now; /* now: dev_tx less its least carriage loss in this call's hours */
    int64_t agent, g;              /* g: the index into positions */
    uint64_t encounter;            /* first(encounter key, agent) */
} Adv;

/* one advertiser's loudness and index into adv, in the order of the rows */
typedef struct {
    double tx;
    int64_t b;
} Loud;

/* one scanner's own numbers */
typedef struct {
    double x, y, reach_rx, dev_rx, enter, now, t0; /* t0: the step's start */
    int64_t agent, step, a, g; /* g: its index into positions */
    uint64_t radio, encounter, offset, fading; /* first(key, agent) of those streams */
} Scan;

/* ChannelParams.path_loss, encounter_spread, fading_depth at distance d (the terms that are exactly 0 or 1
 * on one side of the breakpoint are not computed there) */
static inline void link_terms(const double *p, double d, double *path, double *spread, double *depth) {
    double bp = p[P_BREAK], dd = d > p[P_MIN_D] ? d : p[P_MIN_D];
    double past, near_f;
    if (dd <= bp) {
        *path = 10.0 * p[P_NEAR_EXP] * log10(dd);
        past = 0.0;
        near_f = p[P_FADE_SIGMA] * pow(dd, p[P_FADE_SLOPE]);
    } else {
        *path = 10.0 * p[P_NEAR_EXP] * log10(bp) + 10.0 * p[P_FAR_EXP] * log10(dd / bp);
        past = dd >= 2.0 * bp ? 1.0 : log2(dd / bp);
        near_f = p[P_FADE_SIGMA] * pow(bp, p[P_FADE_SLOPE]);
    }
    *spread = sqrt(p[P_ENC_SIGMA] * p[P_ENC_SIGMA] + past * (p[P_FAR_SHADOW] * p[P_FAR_SHADOW]));
    double far_f = near_f > p[P_FAR_FADE] ? near_f : p[P_FAR_FADE];
    *depth = (1.0 - past) * near_f + past * far_f;
}

/* A cheap, conservative test that rejects a candidate before its exact draws: most pairs in reach (98 %
 * in a city) are not heard, and the exact test costs a carriage lookup, logarithms, a quantile and an
 * exponential. The candidate is heard iff u < (1 - loss) phi(z), z = (level - sensitivity) / total, and
 * level grows with the encounter uniform V through quantile(V). Uniforms are bucketed by their leading
 * bits (16 buckets per octave of u and of 1 - V), distances by those of d^2; per bucket a table holds a
 * bound: the largest z that u's bucket surely rejects, the largest quantile V's bucket can give, and per
 * distance bucket the path loss at its near edge, the spreads' range. A candidate is dropped only when
 * its upper bound of z is below what its u needs, so exactly the packets of the exact test are kept
 * (the same draws, the same order of operations for those that pass): only the work changes. */
#define BITS_SHIFT 48                     /* sign, exponent and 4 mantissa bits: 16 buckets per octave */
#define U_BASE ((int64_t)(1023 - 54) << 4) /* the smallest hashed uniform is 2**-54 */
#define U_BUCKETS (56 * 16)
static double Q_MAX[U_BUCKETS]; /* the largest quantile(V) when 1 - V falls in the bucket */

static inline int64_t bucket(double x, int64_t base) {
    uint64_t b;
    memcpy(&b, &x, 8);
    return (int64_t)(b >> BITS_SHIFT) - base;
}

static inline double bucket_edge(int64_t k, int64_t base) {
    uint64_t b = (uint64_t)(k + base) << BITS_SHIFT;
    double x;
    memcpy(&x, &b, 8);
    return x;
}

/* quantile(1 - w) as the kernel computes it when 1 - V == w (exactly so in the upper tail) */
static double quantile_of_complement(double w) {
    if (w < 0.02425) {
        double t = sqrt(-2.0 * log(w));
        return -((((((QC[0] * t + QC[1]) * t + QC[2]) * t + QC[3]) * t + QC[4]) * t + QC[5]) /
                 ((((QD[0] * t + QD[1]) * t + QD[2]) * t + QD[3]) * t + 1.0));
    }
    return quantile(1.0 - w);
}

static void init_q_max(void) {
    for (int64_t k = 0; k < U_BUCKETS; k++) {
        /* a little below the bucket's edge (V's own rounding), and 1e-3 over Acklam's seams */
        double w = bucket_edge(k, U_BASE) * (1.0 - 1.0 / 64.0);
        Q_MAX[k] = quantile_of_complement(w < 1.0 ? w : 1.0 - 1.0 / 64.0) + 1e-3;
    }
}

typedef struct Bounds {
    double *z_min;                              /* per u bucket: z at or below this is never heard */
    double *head, *spread_lo, *spread_hi, *inv_lo, *inv_hi; /* per d^2 bucket; inv: 1 / total spread */
    int64_t d_base, d_buckets;
    double per_encounter, step_share; /* 1 / encounter_seconds, dt / encounter_seconds */
} Bounds;

static void free_bounds(Bounds *b) {
    free(b->z_min), free(b->head), free(b->spread_lo), free(b->spread_hi), free(b->inv_lo), free(b->inv_hi);
}

static int make_bounds(const double *p, double span2, Bounds *b) {
    memset(b, 0, sizeof *b);
    double floor2 = p[P_MIN_D] * p[P_MIN_D];
    b->d_base = bucket(floor2, 0);
    b->d_buckets = bucket(span2 > floor2 ? span2 : floor2, b->d_base) + 1;
    size_t nd = (size_t)b->d_buckets;
    b->z_min = malloc(U_BUCKETS * sizeof(double));
    b->head = malloc(nd * sizeof(double));
    b->spread_lo = malloc(nd * sizeof(double));
    b->spread_hi = malloc(nd * sizeof(double));
    b->inv_lo = malloc(nd * sizeof(double));
    b->inv_hi = malloc(nd * sizeof(double));
    if (!b->z_min || !b->head || !b->spread_lo || !b->spread_hi || !b->inv_lo || !b->inv_hi) {
        free_bounds(b);
        return -1;
    }
    b->per_encounter = 1.0 / p[P_ENC_SECONDS];
    b->step_share = p[P_DT] / p[P_ENC_SECONDS];
    double keep = 1.0 - p[P_PACKET_LOSS], width2 = p[P_WIDTH] * p[P_WIDTH];
    for (int64_t k = 0; k < U_BUCKETS; k++) {
        /* the largest z with keep * phi(z) <= the bucket's smallest u (phi is non-decreasing) */
        double u = bucket_edge(k, U_BASE);
        if (!(u < keep)) {
            b->z_min[k] = INFINITY;
            continue;
        }
        double lo = quantile(u / keep) - 1.0, hi = lo + 2.0;
        while (keep * phi(lo) > u) lo -= 1.0;
        while (!(keep * phi(hi) > u)) hi += 1.0;
        for (int it = 0; it < 40; it++) {
            double mid = 0.5 * (lo + hi);
            if (keep * phi(mid) > u) hi = mid;
            else lo = mid;
        }
        b->z_min[k] = lo - 1e-9;
    }
    for (int64_t k = 0; k < b->d_buckets; k++) {
        double lo = k == 0 ? 0.0 : sqrt(bucket_edge(k, b->d_base)), hi = sqrt(bucket_edge(k + 1, b->d_base));
        /* path loss and spread grow with distance; the fading depth is monotone between the floor,
         * the breakpoint and twice it */
        double at[5] = {lo, hi, p[P_MIN_D], p[P_BREAK], 2.0 * p[P_BREAK]};
        double path, s_lo, s_hi, t_lo = INFINITY, t_hi = 0.0, spread, depth;
        link_terms(p, lo, &path, &s_lo, &depth);
        link_terms(p, hi, &depth, &s_hi, &depth);
        for (int j = 0; j < 5; j++) {
            if (j > 1 && !(at[j] > lo && at[j] < hi)) continue;
            double ignored;
            link_terms(p, at[j], &ignored, &spread, &depth);
            double total = sqrt(depth * depth + width2);
            t_lo = total < t_lo ? total : t_lo;
            t_hi = total > t_hi ? total : t_hi;
        }
        b->head[k] = p[P_RSSI1M] - (path - 1e-9) - p[P_SENS] + 1e-6;
        b->spread_lo[k] = s_lo * (1.0 - 1e-9);
        b->spread_hi[k] = s_hi * (1.0 + 1e-9);
        b->inv_lo[k] = 1.0 / t_lo * (1.0 + 1e-9); /* bounds 1 / total from above ... */
        b->inv_hi[k] = 1.0 / t_hi * (1.0 - 1e-9); /* ... and from below */
    }
    return 0;
}

/* Bounds depend only on the channel's numbers (and the venue's span): a run calls the kernel for every
 * batch with the same ones, so tables are kept, each written whole under the GIL before it is used and
 * never changed after (threads running the kernel without the GIL only read them). */
#define CACHED 32
static double CACHE_P[CACHED][P_COUNT];
static Bounds CACHE_B[CACHED];
static int n_cached;

/* the bounds for p, from the cache or made (into *own when the cache is full: the caller frees it) */
static const Bounds *bounds_for(const double *p, Bounds *own) {
    for (int k = 0; k < n_cached; k++)
        if (memcmp(CACHE_P[k], p, sizeof CACHE_P[k]) == 0) return &CACHE_B[k];
    Bounds *b = n_cached < CACHED ? &CACHE_B[n_cached] : own;
    if (make_bounds(p, p[P_SPAN] * p[P_SPAN], b) < 0) return NULL;
    if (b != own) memcpy(CACHE_P[n_cached++], p, sizeof CACHE_P[0]);
    return b;
}

/* One candidate the cheap test kept, for its exact draws. */
typedef struct {
    double d2, u;
    uint64_t h; /* the encounter hash for encounter e (e: -1 when the cheap test did not draw it) */
    int64_t e;
} Cand;

/* the encounter the step's start falls in (-1 before it began or out of range), f: the start in
 * encounters; selects rather than && so that it vectorises (conditions as 64-bit lanes) */
static inline int64_t step_encounter(const Bounds *bd, double t0, double began, double *f) {
    *f = (t0 - began) * bd->per_encounter;
    double fe = *f >= 0.0 ? *f : -1.0;
    return (int64_t)(*f < 1e15 ? fe : -1.0);
}

/* one distance bucket's tables in one 64-byte line, for the AVX-512 screen: Bounds' and never[] */
typedef struct {
    double head, spread_lo, spread_hi, inv_lo, inv_hi, never, unused[2];
} Near;

/* One scanner's numbers for the screen of a cell's rows (below). */
typedef struct {
    const Bounds *bd;
    const Scan *sc;
    const Adv *rows;
    const double *never;
    double span2, keep, rx_off, grid_step;
} Screen;

/* the cheap test's upper bound of z (see Bounds) for encounter hash h at distance bucket kd, rx_now and
 * tx_now: the two ends' Scan.now and Adv.now */
static inline double z_bound(const Bounds *bd, uint64_t h, int64_t kd, double rx_now, double tx_now) {
    double w = ((double)(~h >> 11) + 0.5) / 9007199254740992.0; /* 1 - V */
    double q = Q_MAX[bucket(w, U_BASE)];
    /* the larger of the two products is the bound whatever the sign */
    double up = q * bd->spread_hi[kd], down = q * bd->spread_lo[kd];
    double margin = bd->head[kd] + rx_now + tx_now + (up > down ? up : down);
    double z_lo = margin * bd->inv_lo[kd], z_hi = margin * bd->inv_hi[kd];
    return z_lo > z_hi ? z_lo : z_hi;
}

/* whether the bound holds: the step's packet times surely fall in encounter e (f: the step's start in
 * encounters); f == 0: the step starts exactly as the encounter does (a run's first step), its packets
 * are in it. Selects, no branch (vectorises). */
static inline int64_t bound_applies(const Bounds *bd, double f, int64_t e) {
    double frac = f - (double)e;
    int64_t applies = e >= 0 ? 1 : 0;
    applies = frac > 1e-9 || f == 0.0 ? applies : 0;
    return frac + bd->step_share < 1.0 - 1e-9 ? applies : 0;
}

/* The walk's cell by cell geometry (both loops of run): the gap from the scanner (g: its coordinate from
 * the grid's origin) to cell c's slab along one axis, 0 inside it */
static inline double side_gap(double g, int64_t c, double cell) {
    double lo = c * cell, hi = lo + cell;
    return g < lo ? lo - g : (g > hi ? g - hi : 0.0);
}

/* whether a cell with side gaps ex, ey is within r, and then in *quiet its rows' threshold: x below it is
 * out of reach of the whole cell */
static inline int cell_in_reach(const Bounds *bd, const double *never, double ex, double ey, double r,
                                double *quiet) {
    double gap = sqrt(ex * ex + ey * ey) * (1.0 - 1e-12) - 1e-9; /* a margin for rounding */
    if (gap > r) return 0;
    int64_t kg = gap > 0.0 ? bucket(gap * gap, bd->d_base) : 0;
    *quiet = never[kg < 0 ? 0 : kg];
    return 1;
}

/* The walk and the cheap test where the CPU has AVX-512 (x86-64-v4). Most rows (98 % in a city) are
 * rejected, at random, so no branch is taken per row: walk_wide lists one scanner's rows in reach (each
 * cell's loud enough prefix, 8 rows a compare), then screen_wide runs the walk's per-row tests and the
 * cheap test on 8 listed rows at a time (64-bit multiplies for the hashes; 8 rows' Adv lines and their
 * distance buckets' Near lines loaded and transposed, two small tables read by scalar loads: gather
 * instructions cost several times more here; the same expressions as consider's, no contraction:
 * setup.py's -ffp-contract=off) and keeps the rows it cannot reject, in the list's order. A cell keeps
 * a few rows (5 of ~60 in a city), so a loop per cell would leave most rows to a scalar remainder; the
 * list keeps all 8 lanes busy. The kept go through consider
 * (below) as every row does on the portable path, so the screen only changes which rows consider sees:
 * the same packets come out. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define WIDE 1
#include <immintrin.h>
#define V4 __attribute__((target("arch=x86-64-v4")))

/* the rows in reach of cells [cx0, cx1] x [cy0, cy1] (cell c's rows: start[c] to start[c + 1], loudest
 * first; by_tx: their loudness) into list, then 8 zeros; returns how many */
V4 static int64_t walk_wide(const Screen *s, const Loud *by_tx, const int64_t *start, int64_t ny, double cell,
                            double r, double gx, double gy, int64_t cx0, int64_t cx1, int64_t cy0, int64_t cy1,
                            int64_t *restrict list) {
    const __m512i lanes = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), evens = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512d rx_off = _mm512_set1_pd(s->rx_off), step = _mm512_set1_pd(s->grid_step);
    int64_t n = 0;
    for (int64_t cx = cx0; cx <= cx1; cx++) {
        double ex = side_gap(gx, cx, cell), quiet;
        for (int64_t cy = cy0; cy <= cy1; cy++) {
            if (!cell_in_reach(s->bd, s->never, ex, side_gap(gy, cy, cell), r, &quiet)) continue;
            int64_t c = cx * ny + cy, past = start[c + 1];
            /* the first row x < quiet ends the cell (the rest are quieter still), as the portable walk */
            for (int64_t k = start[c]; k < past; k += 8) {
                int64_t left = past - k < 8 ? past - k : 8;
                __mmask16 two = (__mmask16)((1u << (2 * left)) - 1); /* Loud: (tx, b) pairs */
                const double *at = (const double *)(by_tx + k);
                __m512d loud = _mm512_permutex2var_pd(_mm512_maskz_loadu_pd((__mmask8)two, at), evens,
                                                      _mm512_maskz_loadu_pd((__mmask8)(two >> 8), at + 8));
                __m512d x = _mm512_add_pd(_mm512_add_pd(rx_off, loud), step);
                unsigned stop = _mm512_cmp_pd_mask(x, _mm512_set1_pd(quiet), _CMP_LT_OQ) | (0xFFu << left);
                int64_t count = __builtin_ctz(stop | 0x100u);
                _mm512_storeu_si512(list + n, _mm512_add_epi64(_mm512_set1_epi64(k), lanes)); /* list has room */
                n += count;
                if (count < 8) break;
            }
        }
    }
    _mm512_storeu_si512(list + n, _mm512_setzero_si512());
    return n;
}

V4 static inline __m512i mix8(__m512i x) {
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)), _mm512_set1_epi64((int64_t)UINT64_C(0xBF58476D1CE4E5B9)));
    x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)), _mm512_set1_epi64((int64_t)UINT64_C(0x94D049BB133111EB)));
    return _mm512_xor_si512(x, _mm512_srli_epi64(x, 31));
}

/* rest(x, b, c) */
V4 static inline __m512i rest8(__m512i x, __m512i b, __m512i c) {
    const __m512i golden = _mm512_set1_epi64((int64_t)GOLDEN);
    x = mix8(_mm512_xor_si512(x, _mm512_add_epi64(b, golden)));
    return mix8(_mm512_xor_si512(x, _mm512_add_epi64(c, golden)));
}

/* to_uniform(x) (the division by 2**53 as a product: exact) */
V4 static inline __m512d uniform8(__m512i x) {
    __m512d v = _mm512_add_pd(_mm512_cvtepu64_pd(_mm512_srli_epi64(x, 11)), _mm512_set1_pd(0.5));
    return _mm512_mul_pd(v, _mm512_set1_pd(1.0 / 9007199254740992.0));
}

/* bucket(x, base) */
V4 static inline __m512i bucket8(__m512d x, int64_t base) {
    return _mm512_sub_epi64(_mm512_srli_epi64(_mm512_castpd_si512(x), BITS_SHIFT), _mm512_set1_epi64(base));
}

/* the 64-byte lines at[k[0]], ..., at[k[7]] as 8 vectors, field by field (v[f][j]: line k[j]'s field f):
 * 8 loads and a transpose, where 8 gathers would cost several times more */
V4 static inline void lines8(const double *at, const int64_t *k, __m512d v[8]) {
    __m512d r[8], t[8];
    for (int j = 0; j < 8; j++) r[j] = _mm512_load_pd(at + 8 * k[j]);
    for (int j = 0; j < 8; j += 2) t[j] = _mm512_unpacklo_pd(r[j], r[j + 1]), t[j + 1] = _mm512_unpackhi_pd(r[j], r[j + 1]);
    const __m512i even = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0), odd = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int j = 0; j < 8; j += 4) {
        r[j] = _mm512_permutex2var_pd(t[j], even, t[j + 2]);     /* fields 0, 4 of rows j..j+3 */
        r[j + 1] = _mm512_permutex2var_pd(t[j], odd, t[j + 2]);  /* 2, 6 */
        r[j + 2] = _mm512_permutex2var_pd(t[j + 1], even, t[j + 3]); /* 1, 5 */
        r[j + 3] = _mm512_permutex2var_pd(t[j + 1], odd, t[j + 3]);  /* 3, 7 */
    }
    static const int field[4][2] = {{0, 4}, {2, 6}, {1, 5}, {3, 7}};
    for (int j = 0; j < 4; j++) {
        v[field[j][0]] = _mm512_shuffle_f64x2(r[j], r[j + 4], 0x44);
        v[field[j][1]] = _mm512_shuffle_f64x2(r[j], r[j + 4], 0xEE);
    }
}

#define AS_INT _mm512_castpd_si512

/* table[at[0]], ..., table[at[7]] by 8 scalar loads (cheaper than a gather instruction on some CPUs) */
V4 static inline __m512d look8(const double *table, __m512i at) {
    int64_t i[8] __attribute__((aligned(64)));
    _mm512_store_si512(i, at);
    return _mm512_set_pd(table[i[7]], table[i[6]], table[i[5]], table[i[4]], table[i[3]], table[i[2]], table[i[1]],
                         table[i[0]]);
}

/* the first n of list (walk_wide's, then 8 zeros) that might be heard, kept in the list's order at its
 * front: consider's tests up to the cheap test, 8 rows at a time; returns how many */
V4 static int64_t screen_wide(const Screen *s, const Near *near, int64_t *list, int64_t n) {
    const Bounds *bd = s->bd;
    const Scan *sc = s->sc;
    const __m512i rx = _mm512_set1_epi64(sc->agent), at_step = _mm512_set1_epi64(sc->step);
    const __m512i radio = _mm512_set1_epi64((int64_t)sc->radio), mine = _mm512_set1_epi64((int64_t)sc->encounter);
    const __m512i me = _mm512_set1_epi64(sc->g), last = _mm512_set1_epi64(bd->d_buckets - 1);
    const __m512d sx = _mm512_set1_pd(sc->x), sy = _mm512_set1_pd(sc->y), span2 = _mm512_set1_pd(s->span2);
    const __m512d rx_off = _mm512_set1_pd(s->rx_off), step = _mm512_set1_pd(s->grid_step);
    const __m512d enter = _mm512_set1_pd(sc->enter), t0 = _mm512_set1_pd(sc->t0), rx_now = _mm512_set1_pd(sc->now);
    const __m512d per_encounter = _mm512_set1_pd(bd->per_encounter), keep = _mm512_set1_pd(s->keep);
    const __m512d zero = _mm512_setzero_pd(), minus_one = _mm512_set1_pd(-1.0);
    int64_t kept = 0;
    for (int64_t o = 0; o < n; o += 8) {
        __mmask8 valid = n - o >= 8 ? 0xFF : (__mmask8)((1u << (n - o)) - 1);
        __m512i k = _mm512_loadu_si512(list + o);
        __m512d a[8], b[8]; /* the rows' fields (Adv), their distance buckets' (Near) */
        lines8((const double *)s->rows, list + o, a);
        /* within span, not the scanner itself, x not below never[] of its distance bucket (as consider) */
        __m512d dx = _mm512_sub_pd(sx, a[0]), dy = _mm512_sub_pd(sy, a[1]);
        __m512d d2 = _mm512_add_pd(_mm512_mul_pd(dx, dx), _mm512_mul_pd(dy, dy));
        int64_t kd[8] __attribute__((aligned(64)));
        _mm512_store_si512(kd, _mm512_min_epi64(_mm512_max_epi64(bucket8(d2, bd->d_base), _mm512_setzero_si512()), last));
        lines8((const double *)near, kd, b);
        __m512d x = _mm512_add_pd(_mm512_add_pd(rx_off, a[2]), step);
        __mmask8 ok = valid & _mm512_cmp_pd_mask(d2, span2, _CMP_LE_OQ) & _mm512_cmpneq_epi64_mask(me, AS_INT(a[6])) &
                      _mm512_cmp_pd_mask(x, b[5], _CMP_GE_OQ);
        /* the cheap test (see Bounds), as consider's */
        __m512i tx = AS_INT(a[5]);
        __m512d u = uniform8(rest8(radio, tx, at_step));
        __m512i hi = _mm512_max_epi64(tx, rx);
        __m512d began = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a[3], enter, _CMP_GT_OQ), enter, a[3]);
        __m512d f = _mm512_mul_pd(_mm512_sub_pd(t0, began), per_encounter); /* step_encounter */
        __m512d fe = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(f, zero, _CMP_GE_OQ), minus_one, f);
        fe = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(f, _mm512_set1_pd(1e15), _CMP_LT_OQ), minus_one, fe);
        __m512i e = _mm512_cvttpd_epi64(fe);
        __m512i lo_first = _mm512_mask_blend_epi64(_mm512_cmplt_epi64_mask(rx, tx), AS_INT(a[7]), mine);
        __m512i h = rest8(lo_first, hi, e);
        /* z_bound */
        __m512d w = uniform8(_mm512_xor_si512(h, _mm512_set1_epi64(-1)));
        __m512d q = look8(Q_MAX, bucket8(w, U_BASE));
        __m512d up = _mm512_mul_pd(q, b[2]), down = _mm512_mul_pd(q, b[1]);
        __m512d margin = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(b[0], rx_now), a[4]), _mm512_max_pd(up, down));
        __m512d z = _mm512_max_pd(_mm512_mul_pd(margin, b[3]), _mm512_mul_pd(margin, b[4]));
        __mmask8 low = _mm512_cmp_pd_mask(z, look8(bd->z_min, bucket8(u, U_BASE)), _CMP_GT_OQ);
        /* bound_applies */
        __m512d frac = _mm512_sub_pd(f, _mm512_cvtepi64_pd(e));
        __mmask8 applies = _mm512_cmpge_epi64_mask(e, _mm512_setzero_si512()) &
                           (_mm512_cmp_pd_mask(frac, _mm512_set1_pd(1e-9), _CMP_GT_OQ) |
                            _mm512_cmp_pd_mask(f, zero, _CMP_EQ_OQ)) &
                           _mm512_cmp_pd_mask(_mm512_add_pd(frac, _mm512_set1_pd(bd->step_share)),
                                              _mm512_set1_pd(1.0 - 1e-9), _CMP_LT_OQ);
        __mmask8 pass = ok & _mm512_cmp_pd_mask(u, keep, _CMP_LT_OQ) & (low | (__mmask8)~applies);
        /* kept <= o: the store lands on entries already read (compressed in a register: to memory it is slow on
         * some CPUs) */
        _mm512_storeu_si512(list + kept, _mm512_maskz_compress_epi64(pass, k));
        kept += __builtin_popcount(pass);
    }
    return kept;
}

/* packet's reads of row ad's device and carriage (at hour), asked for before it needs them: a prefetch only,
 * nothing computed changes */
#define AHEAD 8
static inline void ahead(const Inputs *in, const Adv *ad, int64_t hour) {
    __builtin_prefetch(in->dev_tx + ad->agent);
    __builtin_prefetch(in->carriage + ad->agent * in->hours + hour);
}
#endif

/* whether the CPU has x86-64-v4 (AVX-512 F, BW, CD, DQ, VL) */
static int can_go_wide(void) {
#ifdef WIDE
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static int go_wide = -1; /* -1: ask the CPU on first use; set by wide() (tests run both loops) */

/* whether packets' screen runs its AVX-512 loop: the CPU's answer on first use, or as wide() set it */
static int wide_now(void) {
    if (go_wide < 0) go_wide = can_go_wide(); /* a race writes the same */
    return go_wide;
}

/* the numpy path's draws for one candidate the cheap test kept (World._heard_numpy: channel.link_level,
 * heard_chance) */
static int packet(const Inputs *in, const Scan *sc, const Adv *ad, const int64_t *b, const Cand *c, Out *out) {
    const double *p = in->p;
    int64_t rx = sc->agent, tx = ad->agent, step = sc->step;
    double u = c->u, d2 = c->d2;
    int64_t hi = tx < rx ? rx : tx;
    double began = ad->enter > sc->enter ? ad->enter : sc->enter;
    uint64_t lo_first = rx < tx ? sc->encounter : ad->encounter;
    double at = sc->t0 + to_uniform(rest(sc->offset, tx, step)) * p[P_DT];
    /* a time within a float's spacing of the next step's start rounds up to it (at 1.6e9 s the spacing
     * is 2.4e-7 s): keep every packet inside its step, [t0, next) (World._heard_numpy does the same) */
    double next = p[P_START] + (double)(step + 1) * p[P_DT];
    at = at < next ? at : nextafter(next, -INFINITY);
    int64_t encounter = floor_int((at - began) / p[P_ENC_SECONDS]);
    int64_t hour = floor_int((at - p[P_START]) / 3600.0);
    if (hour > in->hours - 1) hour = in->hours - 1;
    int cx = in->carriage[tx * in->hours + hour], cr = in->carriage[rx * in->hours + hour];
    double d = sqrt(d2), path, spread, depth;
    link_terms(p, d, &path, &spread, &depth);
    /* the cheap test's hash when it was for this encounter */
    double offset = quantile(to_uniform(c->e >= 0 && encounter == c->e ? c->h : rest(lo_first, hi, encounter))) * spread;
    double level = p[P_RSSI1M] - path - in->loss[cx] - in->loss[cr] + in->dev_tx[tx] + sc->dev_rx + offset;
    double total = sqrt(depth * depth + p[P_WIDTH] * p[P_WIDTH]);
    double z = (level - p[P_SENS]) / total;
    /* below -9 the chance is < 1e-19, under the smallest hashed uniform (2**-54): never heard */
    if (z < -9.0 || !(u < (1.0 - p[P_PACKET_LOSS]) * phi(z))) return 0;
    /* channel.heard_rssi: the fading given that the packet was heard */
    double s = -total * quantile(u / (1.0 - p[P_PACKET_LOSS]));
    double fading = depth * s / (total * total) + p[P_WIDTH] / total * quantile(to_uniform(rest(sc->fading, tx, step)));
    Packet row = {sc->a, *b, at, level, level + depth * fading, d, u};
    return push(out, row);
}

#if defined(__GNUC__) || defined(__clang__)
#define INLINE inline __attribute__((always_inline)) /* in both loops of run: a call per row costs */
#else
#define INLINE inline
#endif

/* One advertiser's row for one scanner, the cheapest rejections first, as the walk always did: within span and not the
 * scanner itself, within the pair's radius (per-bucket edges, the exact interpolation only in a bucket's
 * sliver between them: reach_edges), the cheap test (see Bounds), the flat loss, then the exact draws
 * (packet). One by one (the portable path: every row in reach) branches that skip work are cheaper than
 * doing it all; on the AVX-512 path only the rows screen_wide kept come here. b: its index into adv (read
 * only for a packet). 0, or -1 out of memory. */
static INLINE int consider(const Inputs *in, const Screen *s, const double *sure, const double *slope,
                           const Adv *ad, const int64_t *b, Out *out) {
    const Bounds *bd = s->bd;
    const Scan *sc = s->sc;
    double dx = sc->x - ad->x, dy = sc->y - ad->y;
    double d2 = dx * dx + dy * dy, x = s->rx_off + ad->loud + s->grid_step;
    if (d2 > s->span2 || sc->g == ad->g) return 0;
    int64_t kd = bucket(d2, bd->d_base);
    kd = kd < 0 ? 0 : (kd >= bd->d_buckets ? bd->d_buckets - 1 : kd);
    if (!(x >= sure[kd])) {
        if (x < s->never[kd]) return 0;
        /* d <= own, with the square root only near the edge (the full path takes its own) */
        double own = interp(x, in->grid, in->table, slope, in->m, s->grid_step);
        if (!(d2 < own * own * (1.0 - 1e-12)) && sqrt(d2) > own) return 0;
    }
    int64_t rx = sc->agent, tx = ad->agent;
    double u = to_uniform(rest(sc->radio, tx, sc->step));
    double began = ad->enter > sc->enter ? ad->enter : sc->enter, f;
    int64_t e = step_encounter(bd, sc->t0, began, &f);
    Cand c = {d2, u, 0, -1};
    if (bound_applies(bd, f, e)) {
        uint64_t mask = -(uint64_t)(rx < tx); /* which end is lo, without a branch on random data */
        c.h = rest((sc->encounter & mask) | (ad->encounter & ~mask), tx < rx ? rx : tx, e), c.e = e;
        if (z_bound(bd, c.h, kd, sc->now, ad->now) <= bd->z_min[bucket(u, U_BASE)]) return 0;
    }
    /* P(heard) never exceeds the flat loss's complement (after the cheap test: it drops most of them) */
    if (!(u < s->keep)) return 0;
    return packet(in, sc, ad, b, &c, out);
}

static int by_advertiser(const void *x, const void *y) {
    const Packet *l = x, *r = y;
    return l->j < r->j ? -1 : (l->j > r->j);
}

/* one scanner's packets by advertiser (each advertiser once): insertion sort for the usual few dozen */
static void by_advertiser_sort(Packet *rows, Py_ssize_t n) {
    if (n > 48) {
        qsort(rows, (size_t)n, sizeof(Packet), by_advertiser);
        return;
    }
    for (Py_ssize_t k = 1; k < n; k++) {
        Packet row = rows[k];
        Py_ssize_t m = k;
        for (; m > 0 && rows[m - 1].j > row.j; m--) rows[m] = rows[m - 1];
        rows[m] = row;
    }
}

static int louder_first(const void *x, const void *y) {
    const Loud *l = x, *r = y;
    if (l->tx != r->tx) return l->tx > r->tx ? -1 : 1;
    return l->b < r->b ? -1 : (l->b > r->b);
}

/* the presort's bucket of loudness tx (run()): 0 for the loudest, buckets - 1 for the quietest */
static inline int64_t loudness_bucket(double tx, double tx_max, double per_unit, int64_t buckets) {
    double v = (tx_max - tx) * per_unit;
    if (!(v > 0.0)) return 0;
    return v < (double)(buckets - 1) ? (int64_t)v : buckets - 1;
}

/* one cell's advertisers loudest first (ties in adv's order; the order of ties changes no packet). They
 * come nearly in that order (run() presorts them by loudness buckets), so an insertion sort moves a few
 * rows; qsort where it would move many (a presort that could not help: the loudness all in one bucket) */
static void loudest_first(Loud *rows, int64_t n) {
    int64_t budget = 8 * n + 64;
    for (int64_t k = 1; k < n; k++) {
        Loud row = rows[k];
        int64_t m = k;
        for (; m > 0 && rows[m - 1].tx < row.tx; m--) rows[m] = rows[m - 1];
        rows[m] = row;
        if ((budget -= k - m) < 0) {
            qsort(rows, (size_t)n, sizeof(Loud), louder_first);
            return;
        }
    }
}

/* Other people's bodies on the line of sight (sim/bodies.py, BodyGrid.count, the same cells and walk):
 * on heard links longer than two corridor cells and up to the breakpoint, each distinct corridor cell
 * the link crosses (samples every cell width from one past the transmitter to one short of the
 * receiver, the ends' own cells excluded) adds its occupants, each taking body_loss dB off the level and
 * the RSSI; such a packet is heard if its uniform is still under heard_chance at the lowered level. Only
 * the cells the walked links cross are counted: a small hash set of them, then one pass over everyone
 * present, which looks up in the set only those in a coarse square near a walked link (a bitmap of
 * hashed squares of 8 cells a side, each sampled point's square and its neighbours marked). */
#define ROW ((int64_t)1 << 31) /* bodies._ROW */

static inline int64_t body_cell(double x, double y, double c) { return floor_int(x / c) * ROW + floor_int(y / c); }

typedef struct {
    int64_t *keys;
    double *counts;
    size_t mask;
    uint64_t *near; /* the coarse squares' bitmap, 2**near_bits bits */
    int near_bits;
    double per_square; /* 1 / the squares' side */
} CellSet;

static inline uint64_t square_bit(const CellSet *set, int64_t sx, int64_t sy) {
    return ((uint64_t)sx * UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)sy * UINT64_C(0xBF58476D1CE4E5B9)) >>
           (64 - set->near_bits);
}

/* whether (x, y) may lie in a cell of the set: every point of a sampled point's cell lies in the
 * sampled point's square or a neighbour (a cell is an eighth of a square), all of them marked */
static inline int near_walked(const CellSet *set, double x, double y) {
    uint64_t bit = square_bit(set, floor_int(x * set->per_square), floor_int(y * set->per_square));
    return (int)(set->near[bit >> 6] >> (bit & 63)) & 1;
}

static void mark_near(CellSet *set, double x, double y) {
    int64_t sx = floor_int(x * set->per_square), sy = floor_int(y * set->per_square);
    for (int64_t i = -1; i <= 1; i++)
        for (int64_t j = -1; j <= 1; j++) {
            uint64_t bit = square_bit(set, sx + i, sy + j);
            set->near[bit >> 6] |= UINT64_C(1) << (bit & 63);
        }
}

static inline size_t cell_slot(const CellSet *set, int64_t key) {
    size_t h = (size_t)mix((uint64_t)key) & set->mask;
    while (set->keys[h] != INT64_MIN && set->keys[h] != key) h = (h + 1) & set->mask;
    return h;
}

/* the cells sampled on one link (BodyGrid.count), those to count marked in keep; returns how many. With
 * set: each sampled point marked in its bitmap. */
static int64_t link_cells(const double *a, const double *b, double d, double c, int64_t *cells, char *keep,
                          CellSet *set) {
    int64_t steps = (int64_t)floor((d - 2.0 * c) / c) + 1;
    int64_t ka = body_cell(a[0], a[1], c), kb = body_cell(b[0], b[1], c);
    for (int64_t k = 0; k < steps; k++) {
        double along = (double)(k + 1) * c, t = along / d;
        double x = a[0] + (b[0] - a[0]) * t, y = a[1] + (b[1] - a[1]) * t;
        cells[k] = body_cell(x, y, c);
        keep[k] = (k == 0 || cells[k] != cells[k - 1]) && cells[k] != ka && cells[k] != kb;
        if (set) mark_near(set, x, y);
    }
    return steps;
}

static int bodies(const Inputs *in, Out *out) {
    const double *p = in->p;
    double c = p[P_CORRIDOR], bp = p[P_BREAK];
    if (!(p[P_BODY_LOSS] > 0.0) || out->size == 0) return 0;
    Py_ssize_t walked = 0;
    int64_t most = 0, cells_total = 0;
    for (Py_ssize_t r = 0; r < out->size; r++) {
        double d = out->rows[r].d;
        if (d > 2.0 * c && d <= bp) {
            walked++;
            int64_t steps = (int64_t)floor((d - 2.0 * c) / c) + 1;
            most = steps > most ? steps : most;
            cells_total += steps;
        }
    }
    if (walked == 0) return 0;
    size_t size = 64;
    while (size < 2 * (size_t)cells_total) size *= 2;
    int near_bits = 12; /* the bitmap's bits: 16 or more per marked square, up to 2**22 */
    while (near_bits < 22 && ((uint64_t)1 << near_bits) < 144 * (uint64_t)cells_total) near_bits++;
    CellSet set = {malloc(size * sizeof(int64_t)), calloc(size, sizeof(double)), size - 1,
                   calloc((size_t)1 << (near_bits - 6), sizeof(uint64_t)), near_bits, 1.0 / (8.0 * c)};
    int64_t *cells = malloc((size_t)most * sizeof(int64_t));
    char *keep = malloc((size_t)most);
    if (!set.keys || !set.counts || !set.near || !cells || !keep) {
        free(set.keys), free(set.counts), free(set.near), free(cells), free(keep);
        return -1;
    }
    for (size_t k = 0; k < size; k++) set.keys[k] = INT64_MIN;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) /* count everyone present in the cells the links cross */
            for (Py_ssize_t k = 0; k < in->n_present; k++) {
                const double *q = in->pos + 2 * in->present[k];
                if (!near_walked(&set, q[0], q[1])) continue;
                size_t h = cell_slot(&set, body_cell(q[0], q[1], c));
                if (set.keys[h] != INT64_MIN) set.counts[h] += 1.0;
            }
        Py_ssize_t kept = 0;
        for (Py_ssize_t r = 0; r < out->size; r++) {
            Packet *row = out->rows + r;
            if (row->d > 2.0 * c && row->d <= bp) {
                const double *a = in->pos + 2 * in->adv[row->j], *b = in->pos + 2 * in->scan[row->i];
                int64_t steps = link_cells(a, b, row->d, c, cells, keep, pass == 0 ? &set : NULL);
                double blocked = 0.0;
                for (int64_t k = 0; k < steps; k++) {
                    if (!keep[k]) continue;
                    size_t h = cell_slot(&set, cells[k]);
                    if (pass == 0) set.keys[h] = cells[k];
                    else blocked += set.counts[h];
                }
                if (pass == 1 && blocked > 0.0) {
                    double lower = p[P_BODY_LOSS] * blocked;
                    double dd = row->d > p[P_MIN_D] ? row->d : p[P_MIN_D];
                    double depth = p[P_FADE_SIGMA] * pow(dd, p[P_FADE_SLOPE]); /* fading_depth up to the breakpoint */
                    double total = sqrt(depth * depth + p[P_WIDTH] * p[P_WIDTH]);
                    if (!(row->u < (1.0 - p[P_PACKET_LOSS]) * phi((row->level - lower - p[P_SENS]) / total))) continue;
                    row->rssi -= lower;
                }
            }
            if (pass == 1) out->rows[kept++] = *row;
        }
        if (pass == 1) out->size = kept;
    }
    free(set.keys), free(set.counts), free(set.near), free(cells), free(keep);
    return 0;
}

/* The pair radius test without interpolating per pair: x = rx_reach + tx_reach + step is in reach of d
 * iff d <= interp(x), and interp is non-decreasing in x. Per d^2 bucket (the Bounds' buckets), every
 * x >= sure[k] has interp(x) above the bucket's far distance and every x < never[k] below its near
 * one; only x in between (a bucket's sliver of a dB) takes the exact test. */
static double crossing(const double *grid, const double *table, const double *slope, Py_ssize_t m, double dist,
                       Py_ssize_t *j) {
    if (dist <= table[0]) return -INFINITY;
    if (dist > table[m - 1]) return INFINITY;
    while (*j < m - 2 && table[*j + 1] < dist) ++*j; /* dist only grows from call to call */
    return grid[*j] + (dist - table[*j]) / slope[*j];
}

static void reach_edges(const double *grid, const double *table, const double *slope, Py_ssize_t m, double step,
                        const Bounds *bd, double *sure, double *never) {
    int monotone = 1;
    for (Py_ssize_t j = 0; j + 1 < m; j++) monotone &= table[j + 1] >= table[j] && isfinite(slope[j]);
    Py_ssize_t j_near = 0, j_far = 0;
    for (int64_t k = 0; k < bd->d_buckets; k++) {
        sure[k] = INFINITY, never[k] = -INFINITY;
        if (!monotone) continue;
        double near = k == 0 ? 0.0 : sqrt(bucket_edge(k, bd->d_base)), far = sqrt(bucket_edge(k + 1, bd->d_base));
        double x = crossing(grid, table, slope, m, far * (1.0 + 1e-9), &j_far);
        x += 1e-7 * (1.0 + fabs(x));
        if (x == -INFINITY || (isfinite(x) && interp(x, grid, table, slope, m, step) >= far * (1.0 + 1e-10)))
            sure[k] = x;
        x = crossing(grid, table, slope, m, near * (1.0 - 1e-9), &j_near);
        x -= 1e-7 * (1.0 + fabs(x));
        if (x == INFINITY || (isfinite(x) && interp(x, grid, table, slope, m, step) < near * (1.0 - 1e-10)))
            never[k] = x;
    }
}

/* an agent's least carriage loss over hours [h_lo, h_hi] */
static double least_loss(const Inputs *in, int64_t agent, int64_t h_lo, int64_t h_hi) {
    double least = INFINITY;
    for (int64_t h = h_lo; h <= h_hi; h++) {
        double l = in->loss[in->carriage[agent * in->hours + h]];
        least = l < least ? l : least;
    }
    return least;
}

/* Work buffers, kept from call to call: a city call needs ~5 MB of them, and memory fresh from the OS
 * is faulted in and zeroed page by page (where glibc maps big blocks afresh each time: under Dask's
 * nannies' MALLOC_TRIM_THRESHOLD_, docs/simulation.md). One set is the module's, taken and given back
 * under the GIL; a call while another holds it (threads) uses its own, freed after. */
enum { W_SLOPE, W_START, W_BLOCK, W_WHERE, W_BY_TX, W_ROWS, W_SURE, W_NEVER, W_LOUD, W_OUT, W_COUNT };

typedef struct {
    void *buf[W_COUNT];
    size_t size[W_COUNT];
} Work;

static Work WORK;
static int work_taken;

/* buffer which of at least size bytes (its contents undefined), or NULL out of memory */
static void *room(Work *w, int which, size_t size) {
    if (w->size[which] < size) {
        size += size / 4; /* a little over: a run's sizes creep up and down */
        free(w->buf[which]);
        w->buf[which] = malloc(size);
        w->size[which] = w->buf[which] ? size : 0;
    }
    return w->buf[which];
}

static void release(Work *w) {
    for (int k = 0; k < W_COUNT; k++) free(w->buf[k]), w->buf[k] = NULL, w->size[k] = 0;
}

static int run(const Inputs *in, Out *out, Work *work) {
    const double *p = in->p;
    double span = p[P_SPAN], step = in->grid[1] - in->grid[0];
    double *slope = room(work, W_SLOPE, (size_t)in->m * sizeof(double));
    if (!slope) return -1;
    for (Py_ssize_t j = 0; j + 1 < in->m; j++) slope[j] = (in->table[j + 1] - in->table[j]) / (in->grid[j + 1] - in->grid[j]);
    double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY, tx_max = -INFINITY, rx_max = -INFINITY;
    double tx_min = INFINITY;
    int64_t s_min = INT64_MAX, s_max = 0;
    for (Py_ssize_t a = 0; a < in->n_scan; a++) {
        double r = in->reach_rx[in->scan[a] % in->n];
        rx_max = r > rx_max ? r : rx_max;
        int64_t s = in->scan[a] / in->n;
        s_min = s < s_min ? s : s_min;
        s_max = s > s_max ? s : s_max;
    }
    /* the hours this call's packets can fall in (a margin of one each side for rounding) */
    int64_t h_lo = (int64_t)floor((double)(in->first + s_min) * p[P_DT] / 3600.0) - 1;
    int64_t h_hi = (int64_t)floor((double)(in->first + s_max + 1) * p[P_DT] / 3600.0) + 1;
    h_lo = h_lo < 0 ? 0 : (h_lo > in->hours - 1 ? in->hours - 1 : h_lo);
    h_hi = h_hi > in->hours - 1 ? in->hours - 1 : (h_hi < h_lo ? h_lo : h_hi);
    /* each advertiser's row, read once in adv's order, and the box they occupy */
    size_t rows = (size_t)(in->n_adv ? in->n_adv : 1);
    Adv *by_adv = room(work, W_ROWS, rows * sizeof(Adv));
    if (!by_adv) return -1;
    for (Py_ssize_t b = 0; b < in->n_adv; b++) {
        int64_t agent = agent_of(in->adv[b], in->n);
        const double *q = in->pos + 2 * in->adv[b];
        Adv row = {q[0], q[1], in->reach_tx[agent], in->enter[agent],
                   in->dev_tx[agent] - least_loss(in, agent, h_lo, h_hi), agent, in->adv[b],
                   first(in->keys[K_ENCOUNTER], agent)};
        by_adv[b] = row;
        x0 = row.x < x0 ? row.x : x0;
        x1 = row.x > x1 ? row.x : x1;
        y0 = row.y < y0 ? row.y : y0;
        y1 = row.y > y1 ? row.y : y1;
        tx_max = row.loud > tx_max ? row.loud : tx_max;
        tx_min = row.loud < tx_min ? row.loud : tx_min;
    }
    double reach = interp(rx_max + tx_max + step, in->grid, in->table, slope, in->m, step);
    reach = reach < span ? reach : span;
    /* cells holding a few advertisers each (by the occupied box's density), at most the largest reach */
    double area = (x1 - x0) * (y1 - y0);
    double cell = sqrt(area * 8.0 / (double)in->n_adv);
    cell = cell < reach ? cell : reach;
    cell = cell > reach / 32.0 ? cell : reach / 32.0;
    if (!(cell > 0.05)) cell = 0.05;
    int64_t nx, ny;
    for (;;) {
        nx = (int64_t)floor((x1 - x0) / cell) + 1;
        ny = (int64_t)floor((y1 - y0) / cell) + 1;
        if (nx * ny <= 4 * (int64_t)in->n_adv + 65536) break;
        cell *= 1.5;
    }
    int64_t cells = nx * ny;
    int wide = wide_now();
    const Bounds *bd = in->bounds;
    int64_t buckets = 256; /* the presort's (below) */
    while (buckets < 8192 && 8 * buckets < (int64_t)in->n_adv) buckets *= 2;
    int64_t *start = room(work, W_START, ((size_t)cells + 1) * sizeof(int64_t));
    /* in one block (64-byte lines): the rows, AVX-512's distance buckets' tables and one scanner's rows in
     * reach (and 8 more) */
    size_t lines = rows + (size_t)bd->d_buckets + (rows + 8 + 7) / 8;
    char *block = room(work, W_BLOCK, lines * 64 + 63); /* aligned by hand: no aligned_alloc on some platforms */
    int64_t *where = room(work, W_WHERE, rows * sizeof(int64_t));
    Loud *by_tx = room(work, W_BY_TX, rows * sizeof(Loud));
    double *sure = room(work, W_SURE, (size_t)bd->d_buckets * sizeof(double));
    double *never = room(work, W_NEVER, (size_t)bd->d_buckets * sizeof(double));
    int64_t *loud = room(work, W_LOUD, ((size_t)buckets + 1) * sizeof(int64_t));
    if (!start || !block || !where || !by_tx || !sure || !never || !loud) return -1;
    Adv *table = (Adv *)(((uintptr_t)block + 63) & ~(uintptr_t)63);
    Near *near = (Near *)(table + rows);
    reach_edges(in->grid, in->table, slope, in->m, step, bd, sure, never);
    for (int64_t k = 0; k < bd->d_buckets; k++) {
        Near line = {bd->head[k], bd->spread_lo[k], bd->spread_hi[k], bd->inv_lo[k], bd->inv_hi[k], never[k], {0, 0}};
        near[k] = line;
    }
    /* all advertisers loudest first, then by cell (stable), without sorting them all: a counting sort by
     * loudness bucket (equal widths over this call's range, a few advertisers in each), then one by cell,
     * each stable in adv's order; each cell's slice is then loudest first but within a bucket, which
     * loudest_first puts right. The first sort's rows go in table (the rows are written after). */
    Loud *by_loud = (Loud *)table;
    double per_unit = (double)buckets / (tx_max - tx_min);
    per_unit = per_unit < INFINITY ? per_unit : 0.0; /* one loudness (or NaN): one bucket */
    memset(start, 0, ((size_t)cells + 1) * sizeof(int64_t));
    memset(loud, 0, ((size_t)buckets + 1) * sizeof(int64_t));
    for (Py_ssize_t b = 0; b < in->n_adv; b++) {
        const Adv *row = by_adv + b;
        int64_t cx = (int64_t)floor((row->x - x0) / cell), cy = (int64_t)floor((row->y - y0) / cell);
        cx = cx < 0 ? 0 : (cx >= nx ? nx - 1 : cx);
        cy = cy < 0 ? 0 : (cy >= ny ? ny - 1 : cy);
        where[b] = cx * ny + cy;
        start[where[b] + 1]++;
        loud[loudness_bucket(row->loud, tx_max, per_unit, buckets) + 1]++;
    }
    for (int64_t c = 0; c < buckets; c++) loud[c + 1] += loud[c];
    for (Py_ssize_t b = 0; b < in->n_adv; b++) {
        Loud row = {by_adv[b].loud, b};
        by_loud[loud[loudness_bucket(row.tx, tx_max, per_unit, buckets)]++] = row;
    }
    for (int64_t c = 0; c < cells; c++) start[c + 1] += start[c];
    for (Py_ssize_t o = 0; o < in->n_adv; o++) by_tx[start[where[by_loud[o].b]]++] = by_loud[o];
    for (int64_t c = cells; c > 0; c--) start[c] = start[c - 1];
    start[0] = 0;
    for (int64_t c = 0; c < cells; c++) loudest_first(by_tx + start[c], start[c + 1] - start[c]);
    for (Py_ssize_t k = 0; k < in->n_adv; k++) table[k] = by_adv[by_tx[k].b]; /* written in packed's order */
    double span2 = span * span, keep = 1.0 - p[P_PACKET_LOSS];
    int rc = 0;
    for (Py_ssize_t a = 0; a < in->n_scan && rc == 0; a++) {
        Py_ssize_t mine = out->size; /* this scanner's packets start here: sorted by advertiser below */
        const double *s = in->pos + 2 * in->scan[a];
        int64_t agent = in->scan[a] % in->n;
        int64_t at_step = in->first + in->scan[a] / in->n;
        Scan sc = {s[0], s[1], in->reach_rx[agent], in->dev_rx[agent], in->enter[agent],
                   in->dev_rx[agent] - least_loss(in, agent, h_lo, h_hi), p[P_START] + (double)at_step * p[P_DT],
                   agent, at_step, a, in->scan[a], first(in->keys[K_RADIO], agent), first(in->keys[K_ENCOUNTER], agent),
                   first(in->keys[K_OFFSET], agent), first(in->keys[K_FADING], agent)};
        double rx_off = sc.reach_rx;
        double r = interp(rx_off + tx_max + step, in->grid, in->table, slope, in->m, step);
        r = r < span ? r : span;
        int64_t cx0 = (int64_t)floor((s[0] - r - x0) / cell), cx1 = (int64_t)floor((s[0] + r - x0) / cell);
        int64_t cy0 = (int64_t)floor((s[1] - r - y0) / cell), cy1 = (int64_t)floor((s[1] + r - y0) / cell);
        cx0 = cx0 < 0 ? 0 : cx0;
        cy0 = cy0 < 0 ? 0 : cy0;
        cx1 = cx1 >= nx ? nx - 1 : cx1;
        cy1 = cy1 >= ny ? ny - 1 : cy1;
        double gx = s[0] - x0, gy = s[1] - y0;
        Screen scr = {bd, &sc, table, never, span2, keep, rx_off, step};
#ifdef WIDE
        if (wide) { /* AVX-512: the rows in reach listed, the cheap test on all of them, the few kept one by one */
            int64_t *listed = (int64_t *)(near + bd->d_buckets);
            int64_t n = walk_wide(&scr, by_tx, start, ny, cell, r, gx, gy, cx0, cx1, cy0, cy1, listed);
            int64_t kept = screen_wide(&scr, near, listed, n); /* ~2 % */
            /* packet's reads of a kept row's own numbers, per agent and scattered over all of them, were two
             * cache misses a row (most kept rows are heard: ~34 packets of ~37 kept a city scanner): asked for
             * AHEAD rows in advance (all at once before this loop, too many at a time, did not pay) */
            int64_t hour = floor_int((sc.t0 - p[P_START]) / 3600.0);
            hour = hour < 0 ? 0 : (hour > in->hours - 1 ? in->hours - 1 : hour);
            for (int64_t o = 0; o < AHEAD && o < kept; o++) ahead(in, table + listed[o], hour);
            for (int64_t o = 0; o < kept && rc == 0; o++) {
                if (o + AHEAD < kept) ahead(in, table + listed[o + AHEAD], hour);
                rc = consider(in, &scr, sure, slope, table + listed[o], &by_tx[listed[o]].b, out);
            }
        }
#endif
        for (int64_t cx = cx0; cx <= cx1 && !wide; cx++) {
            double ex = side_gap(gx, cx, cell), quiet;
            for (int64_t cy = cy0; cy <= cy1 && rc == 0; cy++) {
                if (!cell_in_reach(bd, never, ex, side_gap(gy, cy, cell), r, &quiet)) continue;
                /* the cell's rows loud enough to reach it: loudest first, up to the first that is not (the
                 * rest of the cell is quieter still; a few rows in a far cell, all of them in a near one) */
                int64_t c = cx * ny + cy;
                for (int64_t k = start[c]; k < start[c + 1] && !(rx_off + table[k].loud + step < quiet) && rc == 0; k++)
                    rc = consider(in, &scr, sure, slope, table + k, &by_tx[k].b, out);
            }
        }
        if (rc < 0) goto failed;
        if (rc == 0) by_advertiser_sort(out->rows + mine, out->size - mine);
    }
failed:
    return rc == 0 ? bodies(in, out) : rc;
}

static PyObject *column(Out *out, size_t offset) {
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, out->size * 8);
    if (!bytes) return NULL;
    char *dst = PyBytes_AS_STRING(bytes);
    for (Py_ssize_t k = 0; k < out->size; k++) memcpy(dst + 8 * k, (char *)&out->rows[k] + offset, 8);
    return bytes;
}

#define NBUF 15

static int need(Py_buffer *v, Py_ssize_t items, Py_ssize_t size, const char *name) {
    if (v->len != items * size) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", name, items * size, v->len);
        return -1;
    }
    return 0;
}

/* whether every index is in [0, points): one pass with no branch (vectorises), unsigned compares */
static int indices(const int64_t *g, Py_ssize_t count, Py_ssize_t points) {
    uint64_t out = 0;
    for (Py_ssize_t k = 0; k < count; k++) out |= (uint64_t)g[k] >= (uint64_t)points;
    return out == 0;
}

static PyObject *packets(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer v[NBUF];
    memset(v, 0, sizeof v);
    long long n, first, hours;
    if (!PyArg_ParseTuple(args, "y*y*y*LLy*y*y*y*y*y*y*y*Ly*y*y*y*", &v[0], &v[1], &v[2], &n, &first, &v[3],
                          &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &hours, &v[11], &v[12], &v[13],
                          &v[14]))
        return NULL;
    Inputs in;
    in.pos = v[0].buf;
    in.scan = v[1].buf;
    in.n_scan = v[1].len / 8;
    in.adv = v[2].buf;
    in.n_adv = v[2].len / 8;
    in.n = n;
    in.first = first;
    in.reach_tx = v[3].buf;
    in.reach_rx = v[4].buf;
    in.grid = v[5].buf;
    in.table = v[6].buf;
    in.m = v[5].len / 8;
    in.dev_tx = v[7].buf;
    in.dev_rx = v[8].buf;
    in.enter = v[9].buf;
    in.carriage = v[10].buf;
    in.hours = hours;
    in.loss = v[11].buf;
    in.p = v[12].buf;
    in.keys = v[13].buf;
    in.present = v[14].buf;
    in.n_present = v[14].len / 8;
    PyObject *result = NULL;
    Py_ssize_t points = v[0].len / 16;
    int bad = n <= 0 || hours <= 0 || in.m < 2 || need(&v[3], n, 8, "reach_tx") || need(&v[4], n, 8, "reach_rx") ||
              need(&v[6], in.m, 8, "table") || need(&v[7], n, 8, "device_tx") || need(&v[8], n, 8, "device_rx") ||
              need(&v[9], n, 8, "enter") || need(&v[10], n * hours, 1, "carriage") ||
              need(&v[12], P_COUNT, 8, "params") || need(&v[13], K_COUNT, 8, "keys");
    bad = bad || !indices(in.scan, in.n_scan, points) || !indices(in.adv, in.n_adv, points) ||
          !indices(in.present, in.n_present, points);
    if (bad) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "packets: bad sizes or indices");
        goto done;
    }
    int rc = 0;
    Bounds own = {0};
    in.bounds = bounds_for(in.p, &own);
    if (!in.bounds) {
        PyErr_NoMemory();
        goto done;
    }
    Work mine = {{NULL}, {0}}, *work = work_taken ? &mine : &WORK; /* under the GIL */
    work_taken |= work == &WORK;
    Out out = {work->buf[W_OUT], 0, (Py_ssize_t)(work->size[W_OUT] / sizeof(Packet))};
    if (in.n_scan && in.n_adv) {
        Py_BEGIN_ALLOW_THREADS rc = run(&in, &out, work);
        Py_END_ALLOW_THREADS
    }
    if (rc < 0) {
        PyErr_NoMemory();
    } else {
        result = Py_BuildValue("(NNNNNNN)", column(&out, offsetof(Packet, i)), column(&out, offsetof(Packet, j)),
                               column(&out, offsetof(Packet, at)), column(&out, offsetof(Packet, level)),
                               column(&out, offsetof(Packet, rssi)),
                               column(&out, offsetof(Packet, d)), column(&out, offsetof(Packet, u)));
    }
    work->buf[W_OUT] = out.rows, work->size[W_OUT] = (size_t)out.capacity * sizeof(Packet);
    if (work == &WORK) work_taken = 0;
    else release(&mine);
    free_bounds(&own);
done:
    for (int k = 0; k < NBUF; k++)
        if (v[k].obj) PyBuffer_Release(&v[k]);
    return result;
}

/* The app's de-duplication rule over rows sorted by (group, time): a row is kept when its time is at
   least its group's threshold (the last kept time + every, -inf for none), which then moves to its time
   + every. One pass; sim/devices.py AppDedup.keep_keys holds the numpy reference. */
static PyObject *keep_spaced(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer g = {0}, t = {0}, thr = {0};
    double every;
    if (!PyArg_ParseTuple(args, "y*y*y*d", &g, &t, &thr, &every)) return NULL;
    PyObject *result = NULL, *keep = NULL, *last = NULL;
    Py_ssize_t n = t.len / 8, groups = thr.len / 8;
    if (g.len != n * 8 || t.len % 8 || thr.len % 8) {
        PyErr_SetString(PyExc_ValueError, "keep_spaced: group and time columns differ in length");
        goto done;
    }
    const long long *gi = g.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (gi[i] < 0 || gi[i] >= groups || (i && gi[i] < gi[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "keep_spaced: groups must be sorted ranks below the thresholds' count");
            goto done;
        }
    keep = PyBytes_FromStringAndSize(NULL, n);
    last = PyBytes_FromStringAndSize(NULL, groups * 8);
    if (!keep || !last) goto done;
    {
        const double *ti = t.buf;
        unsigned char *k = (unsigned char *)PyBytes_AS_STRING(keep);
        double *l = (double *)PyBytes_AS_STRING(last);
        double *th = malloc((size_t)(groups ? groups : 1) * sizeof(double));
        if (!th) {
            PyErr_NoMemory();
            goto done;
        }
        memcpy(th, thr.buf, (size_t)groups * sizeof(double));
        for (Py_ssize_t j = 0; j < groups; j++) l[j] = -INFINITY;
        for (Py_ssize_t i = 0; i < n; i++) {
            long long j = gi[i];
            k[i] = ti[i] >= th[j];
            if (k[i]) {
                l[j] = ti[i];
                th[j] = ti[i] + every;
            }
        }
        free(th);
    }
    result = Py_BuildValue("(OO)", keep, last);
done:
    Py_XDECREF(keep);
    Py_XDECREF(last);
    PyBuffer_Release(&g);
    PyBuffer_Release(&t);
    PyBuffer_Release(&thr);
    return result;
}

static PyObject *wide(PyObject *self, PyObject *args) {
    (void)self;
    int on;
    if (!PyArg_ParseTuple(args, "p", &on)) return NULL;
    go_wide = on && can_go_wide();
    return PyBool_FromLong(go_wide);
}

static PyMethodDef METHODS[] = {
    {"keep_spaced", keep_spaced, METH_VARARGS,
     "keep_spaced(group, times, thresholds, every) -> (keep as uint8 bytes, last kept time per group)"},
    {"packets", packets, METH_VARARGS,
     "packets(positions, scan, adv, n, first, reach_tx, reach_rx, grid, table, device_tx, device_rx, enter, "
     "carriage, hours, carriage_loss, params, keys, present) -> (i, j, at, level, rssi, distance, u) as bytes"},
    {"wide", wide, METH_VARARGS,
     "wide(on) -> whether packets' screen now runs its AVX-512 loop (on and the CPU has it; for tests)"},
    {NULL, NULL, 0, NULL}};

static void module_free(void *module) {
    (void)module;
    if (!work_taken) release(&WORK);
}

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_kernel", NULL, -1, METHODS, NULL, NULL, NULL, module_free};

PyMODINIT_FUNC PyInit__kernel(void) {
    init_q_max();
    return PyModule_Create(&MODULE);
}
