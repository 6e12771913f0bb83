/* proximity.sim._pairs: the neighbour searches of sim/neighbours.py (close_pairs, _Binned.near) in C.
 *
 * A city step searches ~20,000 walkers on the move among themselves and against everyone standing; the
 * numpy searches build candidate arrays (~2 a walker) through a dozen whole-array passes, and numpy's
 * per-element overhead, not the arithmetic, was their cost. These functions walk the same grid cells in
 * the same order and compute the same floating-point operations (cells floor((x - low) / side) + 1,
 * d2 = dx * dx + dy * dy, kept where d2 <= radius * radius, distance sqrt(d2); no contraction into FMA,
 * see setup.py), so they return the numpy functions' pairs, distances and order bit for bit
 * (tests/test_sim_neighbours.py compares them). Results come back as bytearrays (writable numpy arrays).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline int64_t floor_int(double v) { /* (int64_t)floor(v) for |v| < 2**62, without a libm call */
    int64_t i = (int64_t)v;
    return i - (v < (double)i);
}

/* the found pairs, kept between calls (grown as needed) */
typedef struct {
    int64_t *i, *j;
    double *d;
    Py_ssize_t size, cap;
} Found;

static Found found = {NULL, NULL, NULL, 0, 0};

static int grow(Found *f) {
    Py_ssize_t cap = f->cap ? 2 * f->cap : 4096;
    int64_t *i = realloc(f->i, cap * sizeof *i);
    if (i) f->i = i;
    int64_t *j = realloc(f->j, cap * sizeof *j);
    if (j) f->j = j;
    double *d = realloc(f->d, cap * sizeof *d);
    if (d) f->d = d;
    if (!i || !j || !d) {
        PyErr_NoMemory();
        return -1;
    }
    f->cap = cap;
    return 0;
}

static inline int add(Found *f, int64_t i, int64_t j, double d) {
    if (f->size == f->cap && grow(f) < 0) return -1;
    f->i[f->size] = i;
    f->j[f->size] = j;
    f->d[f->size] = d;
    f->size++;
    return 0;
}

static PyObject *found_tuple(const Found *f) {
    PyObject *i = PyByteArray_FromStringAndSize((const char *)f->i, f->size * 8);
    PyObject *j = PyByteArray_FromStringAndSize((const char *)f->j, f->size * 8);
    PyObject *d = PyByteArray_FromStringAndSize((const char *)f->d, f->size * 8);
    PyObject *out = (i && j && d) ? PyTuple_Pack(3, i, j, d) : NULL;
    Py_XDECREF(i);
    Py_XDECREF(j);
    Py_XDECREF(d);
    return out;
}

static int need(Py_buffer *v, Py_ssize_t items, const char *name) {
    if (v->len != items * 8) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of 8 bytes, got %zd bytes", name, items, v->len);
        return -1;
    }
    return 0;
}

/* close_pairs(points, low_x, low_y, side, radius2, layer, layers): every pair i < j of the (n, 2) points
 * with d2 <= radius2 (and, with a non-empty ``layer``, the same layer), as numpy close_pairs finds them:
 * points sorted by cell (stable), each paired with the rest of its cell and the cell above (one slice)
 * and the three cells of the next column (one slice), in that order */
/* close_pairs' search, its pairs appended to ``found``: (min, max) of the points' indices, or with ``ids``
 * (each point's agent) of their agents, kept where the lower agent is ``owned`` (one byte an agent);
 * 0, or -1 with an exception set */
static int close_core(const double *pt, Py_ssize_t n, double lx, double ly, double side, double r2,
                      const int64_t *layer, long long layers, const int64_t *ids, const uint8_t *owned) {
    int status = -1;
    int64_t *cx = NULL, *cy = NULL, *flat = NULL, *starts = NULL, *order = NULL;
    double *xs = NULL, *ys = NULL;
    if (n < 2) return 0;
    cx = malloc(n * sizeof *cx);
    cy = malloc(n * sizeof *cy);
    flat = malloc(n * sizeof *flat);
    order = malloc(n * sizeof *order);
    xs = malloc(n * sizeof *xs);
    ys = malloc(n * sizeof *ys);
    if (!cx || !cy || !flat || !order || !xs || !ys) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t mx = INT64_MIN, my = INT64_MIN;
    for (Py_ssize_t k = 0; k < n; k++) {
        cx[k] = floor_int((pt[2 * k] - lx) / side) + 1;
        cy[k] = floor_int((pt[2 * k + 1] - ly) / side) + 1;
        if (cx[k] > mx) mx = cx[k];
        if (cy[k] > my) my = cy[k];
    }
    int64_t columns = mx + 2, rows = my + 2;
    if (layer)
        for (Py_ssize_t k = 0; k < n; k++) cx[k] += layer[k] * columns;
    columns *= layers;
    int64_t cells = columns * rows;
    starts = calloc((size_t)cells + 1, sizeof *starts);
    if (!starts) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        flat[k] = cx[k] * rows + cy[k];
        if (flat[k] < 0 || flat[k] >= cells) {
            PyErr_SetString(PyExc_ValueError, "close_pairs: a point outside the grid (low, layer)");
            goto done;
        }
        starts[flat[k] + 1]++;
    }
    for (int64_t c = 0; c < cells; c++) starts[c + 1] += starts[c];
    /* the stable order by cell (a counting sort): each cell's start moves on as its points are placed */
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t r = starts[flat[k]]++;
        order[r] = k;
    }
    for (int64_t c = cells; c > 0; c--) starts[c] = starts[c - 1]; /* back to each cell's start */
    starts[0] = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        xs[r] = pt[2 * order[r]];
        ys[r] = pt[2 * order[r] + 1];
        cy[r] = flat[order[r]]; /* each rank's cell */
    }
    for (Py_ssize_t r = 0; r < n; r++) {
        int64_t f = cy[r];
        int64_t lo[2] = {r + 1, starts[f + rows - 1]}, hi[2] = {starts[f + 2], starts[f + rows + 2]};
        double x = xs[r], y = ys[r];
        int64_t a = order[r];
        for (int s = 0; s < 2; s++)
            for (int64_t b = lo[s]; b < hi[s]; b++) {
                double dx = x - xs[b];
                double dy = y - ys[b];
                double d2 = dx * dx + dy * dy;
                if (d2 <= r2) {
                    int64_t o = order[b], u = a, v = o;
                    if (ids) {
                        u = ids[a];
                        v = ids[o];
                        if (!owned[u < v ? u : v]) continue;
                    }
                    if (add(&found, u < v ? u : v, u < v ? v : u, sqrt(d2)) < 0) goto done;
                }
            }
    }
    status = 0;
done:
    free(cx);
    free(cy);
    free(flat);
    free(starts);
    free(order);
    free(xs);
    free(ys);
    return status;
}

static PyObject *close_pairs(PyObject *self, PyObject *args) {
    Py_buffer p = {0}, lay = {0};
    double lx, ly, side, r2;
    long long layers;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*ddddy*L", &p, &lx, &ly, &side, &r2, &lay, &layers)) return NULL;
    Py_ssize_t n = p.len / 16;
    const int64_t *layer = lay.len ? lay.buf : NULL;
    if (p.len != n * 16 || (layer && need(&lay, n, "layer") < 0) || layers < 1) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "points: expected (n, 2) float64");
        goto done;
    }
    found.size = 0;
    if (close_core(p.buf, n, lx, ly, side, r2, layer, layers, NULL, NULL) == 0) out = found_tuple(&found);
done:
    PyBuffer_Release(&p);
    PyBuffer_Release(&lay);
    return out;
}

/* near's search of the m points pa, its pairs appended to ``found``: (i, order[p]), or with ``ids`` (each
 * point's agent; ``order`` then holds the binned points' agents, all < ``agents``) (min, max) of their
 * agents, kept where the binned agent is ``present`` and the lower agent ``owned``; 0, or -1 with an
 * exception set */
static int near_core(const double *pa, Py_ssize_t m, double ox, double oy, double side, double r2, int64_t rows,
                     Py_ssize_t cells, Py_ssize_t n, const int64_t *starts, const int64_t *order, const double *x,
                     const double *y, const int64_t *ids, const uint8_t *present, const uint8_t *owned,
                     int64_t agents) {
    for (Py_ssize_t i = 0; i < m; i++) {
        double ax = pa[2 * i], ay = pa[2 * i + 1];
        int64_t cx = floor_int((ax - ox) / side) + 1, cy = floor_int((ay - oy) / side) + 1;
        for (int64_t c = -1; c <= 1; c++) {
            int64_t column = (cx + c) * rows + cy;
            if (column - 1 < 0 || column + 2 >= cells) {
                PyErr_SetString(PyExc_IndexError, "near: a point outside the grid");
                return -1;
            }
            int64_t lo = starts[column - 1], hi = starts[column + 2];
            if (lo < 0 || hi > n) {
                PyErr_SetString(PyExc_ValueError, "near: starts beyond the points");
                return -1;
            }
            for (int64_t p = lo; p < hi; p++) {
                double dx = ax - x[p];
                double dy = ay - y[p];
                double d2 = dx * dx + dy * dy;
                if (d2 > r2) continue;
                int64_t u = i, v = order[p];
                if (ids) {
                    u = ids[i];
                    if ((uint64_t)v >= (uint64_t)agents) {
                        PyErr_SetString(PyExc_ValueError, "movers: an agent beyond present and owned");
                        return -1;
                    }
                    if (!present[v] || !owned[u < v ? u : v]) continue;
                    if (u > v) {
                        int64_t t = u;
                        u = v;
                        v = t;
                    }
                }
                if (add(&found, u, v, sqrt(d2)) < 0) return -1;
            }
        }
    }
    return 0;
}

/* near(a, origin_x, origin_y, side, radius2, rows, starts, order, x, y): every (i, j) with
 * |a[i] - points[j]| ** 2 <= radius2, as _Binned.near finds them: for each point of a, the three columns
 * of three cells around its cell, each one slice of the points in cell order */
static PyObject *near(PyObject *self, PyObject *args) {
    Py_buffer a = {0}, st = {0}, od = {0}, bx = {0}, by = {0};
    double ox, oy, side, r2;
    long long rows;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*ddddLy*y*y*y*", &a, &ox, &oy, &side, &r2, &rows, &st, &od, &bx, &by))
        return NULL;
    Py_ssize_t m = a.len / 16, cells = st.len / 8, n = od.len / 8;
    if (a.len != m * 16 || st.len != cells * 8 || od.len != n * 8 || need(&bx, n, "x") < 0 ||
        need(&by, n, "y") < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "near: bad array sizes");
        goto done;
    }
    found.size = 0;
    if (near_core(a.buf, m, ox, oy, side, r2, rows, cells, n, st.buf, od.buf, bx.buf, by.buf, NULL, NULL, NULL, 0) ==
        0)
        out = found_tuple(&found);
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&st);
    PyBuffer_Release(&od);
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    return out;
}

/* movers(a, ids, origin_x, origin_y, side, radius2, rows, starts, agents, x, y, present, owned, low_x, low_y,
 * cell): a city step's close pairs of its movers (positions a, agents ids) as StaticGrid.movers_numpy
 * finds them, each as (lower agent, higher agent, distance), kept where the lower agent is owned: with
 * the binned standing (``agents``: theirs in cell order) who are present, in near's order, then among
 * themselves in close_pairs' order (its cells of side ``cell`` from low); present and owned: a byte an agent */
static PyObject *movers(PyObject *self, PyObject *args) {
    Py_buffer a = {0}, id = {0}, st = {0}, od = {0}, bx = {0}, by = {0}, pr = {0}, ow = {0};
    double ox, oy, side, r2, lx, ly, cell;
    long long rows;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*y*ddddLy*y*y*y*y*y*ddd", &a, &id, &ox, &oy, &side, &r2, &rows, &st, &od, &bx, &by,
                          &pr, &ow, &lx, &ly, &cell))
        return NULL;
    Py_ssize_t m = a.len / 16, cells = st.len / 8, n = od.len / 8, agents = pr.len;
    if (a.len != m * 16 || need(&id, m, "ids") < 0 || st.len != cells * 8 || od.len != n * 8 ||
        need(&bx, n, "x") < 0 || need(&by, n, "y") < 0 || ow.len != agents) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "movers: bad array sizes");
        goto done;
    }
    const int64_t *ids = id.buf;
    for (Py_ssize_t i = 0; i < m; i++)
        if ((uint64_t)ids[i] >= (uint64_t)agents) {
            PyErr_SetString(PyExc_ValueError, "movers: an agent beyond present and owned");
            goto done;
        }
    found.size = 0;
    if (near_core(a.buf, m, ox, oy, side, r2, rows, cells, n, st.buf, od.buf, bx.buf, by.buf, ids, pr.buf, ow.buf,
                  agents) == 0 &&
        close_core(a.buf, m, lx, ly, cell, r2, NULL, 1, ids, ow.buf) == 0)
        out = found_tuple(&found);
done:
    PyBuffer_Release(&a);
    PyBuffer_Release(&id);
    PyBuffer_Release(&st);
    PyBuffer_Release(&od);
    PyBuffer_Release(&bx);
    PyBuffer_Release(&by);
    PyBuffer_Release(&pr);
    PyBuffer_Release(&ow);
    return out;
}

static void module_free(void *module) {
    free(found.i);
    free(found.j);
    free(found.d);
    found = (Found){NULL, NULL, NULL, 0, 0};
}

static PyMethodDef METHODS[] = {
    {"close_pairs", close_pairs, METH_VARARGS, "Pairs within a radius among points (as neighbours.close_pairs)."},
    {"near", near, METH_VARARGS, "Pairs within a radius of points and a binned grid (as _Binned.near)."},
    {"movers", movers, METH_VARARGS, "A city step's close pairs of its movers (as StaticGrid.movers_numpy)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_pairs", NULL, -1, METHODS, NULL, NULL, NULL, module_free};

PyMODINIT_FUNC PyInit__pairs(void) { return PyModule_Create(&MODULE); }
