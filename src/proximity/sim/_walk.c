/* proximity.sim._walk: one step of the walkers in place (sim/mobility.py, Movers.step) in C.
 *
 * A city step moves ~10,000 of its 30,000 walkers and their followers; numpy spent more on its passes
 * (the walkers' pauses gathered and compared, each moving leg's fields gathered, positions scattered)
 * than on the arithmetic. This function does the numpy path's floating-point operations per walker, in
 * the same order (along = moves * reach / length, or 0 for a leg of length 0; x = start + (target -
 * start) * along; on the target from the need-th move; a follower at its leader's position plus its
 * offset, clipped as np.clip does; no contraction into FMA, see setup.py), so positions are the numpy
 * path's bit for bit (tests/test_sim_motion.py compares them). The arrivals' draws stay in Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define NEVER 4611686018427387904LL /* 2**62 moves: mobility._NEVER, a walker of speed 0 */

/* the arriving legs, kept between calls (grown as needed) */
static int64_t *arrived = NULL;
static Py_ssize_t arrived_cap = 0;

static int sized(Py_buffer *v, Py_ssize_t items, const char *name) {
    if (v->len != items * 8) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items of 8 bytes, got %zd bytes", name, items, v->len);
        return -1;
    }
    return 0;
}

static int within(const int64_t *index, Py_ssize_t count, int64_t bound, const char *name) {
    for (Py_ssize_t k = 0; k < count; k++)
        if (index[k] < 0 || index[k] >= bound) {
            PyErr_Format(PyExc_ValueError, "%s[%zd] = %lld is outside [0, %lld)", name, k, (long long)index[k],
                         (long long)bound);
            return -1;
        }
    return 0;
}

/* step(t, walkers, pause_until, pos, start, target, length, need, reach, moved, followers, followed,
 * leader, offset, width, height): every walker (legs 0..m-1; agent walkers[i]) whose pause_until <= t
 * moves one step along its leg (moved[i] += 1) and is written to pos; every follower whose leader's leg
 * (followed) moved is placed at clip(pos[leader] + offset, 0, (width, height)). Returns the legs that
 * reach their targets at this step, ascending, as a bytearray of int64. */
static PyObject *step(PyObject *self, PyObject *args) {
    double t, width, height;
    Py_buffer b[13] = {{0}};
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "dy*y*w*y*y*y*y*y*w*y*y*y*y*dd", &t, &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12], &width, &height))
        return NULL;
    Py_ssize_t m = b[0].len / 8, n = b[1].len / 8, f = b[9].len / 8;
    const int64_t *walkers = b[0].buf, *need = b[6].buf, *followers = b[9].buf, *followed = b[10].buf,
                  *leader = b[11].buf;
    const double *pause = b[1].buf, *start = b[3].buf, *target = b[4].buf, *length = b[5].buf,
                 *reach = b[7].buf, *offset = b[12].buf;
    double *pos = b[2].buf;
    int64_t *moved = b[8].buf;
    if (sized(&b[0], m, "walkers") < 0 || sized(&b[1], n, "pause_until") < 0 || sized(&b[2], 2 * n, "pos") < 0 ||
        sized(&b[3], 2 * m, "start") < 0 || sized(&b[4], 2 * m, "target") < 0 || sized(&b[5], m, "length") < 0 ||
        sized(&b[6], m, "need") < 0 || sized(&b[7], m, "reach") < 0 || sized(&b[8], m, "moved") < 0 ||
        sized(&b[9], f, "followers") < 0 || sized(&b[10], f, "followed") < 0 || sized(&b[11], n, "leader") < 0 ||
        sized(&b[12], 2 * n, "offset") < 0 || within(walkers, m, n, "walkers") < 0 ||
        within(followers, f, n, "followers") < 0 || within(followed, f, m, "followed") < 0)
        goto done;
    for (Py_ssize_t k = 0; k < f; k++)
        if (leader[followers[k]] < 0 || leader[followers[k]] >= n) {
            PyErr_SetString(PyExc_ValueError, "leader: a follower's leader is outside the agents");
            goto done;
        }
    if (arrived_cap < m) {
        int64_t *grown = realloc(arrived, (m ? m : 1) * sizeof *grown);
        if (!grown) {
            PyErr_NoMemory();
            goto done;
        }
        arrived = grown;
        arrived_cap = m ? m : 1;
    }
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        int64_t a = walkers[i];
        if (pause[a] > t) continue; /* still pausing: where it stands */
        int64_t moves = moved[i] + 1;
        moved[i] = moves;
        double x, y;
        if (moves >= need[i]) { /* on the target; the leg ends */
            x = target[2 * i];
            y = target[2 * i + 1];
            arrived[count++] = i;
        } else {
            double along = length[i] > 0 ? (double)moves * reach[i] / length[i] : 0.0;
            x = start[2 * i] + (target[2 * i] - start[2 * i]) * along;
            y = start[2 * i + 1] + (target[2 * i + 1] - start[2 * i + 1]) * along;
        }
        pos[2 * a] = x;
        pos[2 * a + 1] = y;
    }
    for (Py_ssize_t k = 0; k < f; k++) {
        if (pause[walkers[followed[k]]] > t) continue; /* the leader stood: so does the follower */
        int64_t g = followers[k], l = leader[g];
        double x = pos[2 * l] + offset[2 * g], y = pos[2 * l + 1] + offset[2 * g + 1];
        x = (x != x || x > 0.0) ? x : 0.0; /* np.clip: min(max(v, low), high), NaN kept */
        y = (y != y || y > 0.0) ? y : 0.0;
        pos[2 * g] = (x != x || x < width) ? x : width;
        pos[2 * g + 1] = (y != y || y < height) ? y : height;
    }
    out = PyByteArray_FromStringAndSize((const char *)arrived, count * 8);
done:
    for (int k = 0; k < 13; k++) PyBuffer_Release(&b[k]);
    return out;
}

/* arrive(t, legs, u, low, span, width, height, walkers, targets, pause_until, start, target, length, need,
 * reach, moved): the legs ``legs`` (ascending) end at t; leg k of them takes the uniforms u[2k], u[2k + 1]
 * for its next target (u * (width, height)) and u[2c + k] for its pause (c legs: t + (low + span * u)),
 * as Movers._arrive does in numpy, and starts from its old target (length sqrt(dx * dx + dy * dy), need
 * moves as _moves_needed counts them, none moved). */
static PyObject *arrive(PyObject *self, PyObject *args) {
    double t, low, span, width, height;
    Py_buffer b[11] = {{0}};
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "dy*y*ddddy*w*w*w*w*w*w*y*w*", &t, &b[0], &b[1], &low, &span, &width, &height,
                          &b[2], &b[3], &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10]))
        return NULL;
    Py_ssize_t c = b[0].len / 8, m = b[2].len / 8, n = b[4].len / 8;
    const int64_t *legs = b[0].buf, *walkers = b[2].buf;
    const double *u = b[1].buf, *reach = b[9].buf;
    double *targets = b[3].buf, *pause = b[4].buf, *start = b[5].buf, *target = b[6].buf, *length = b[7].buf;
    int64_t *need = b[8].buf, *moved = b[10].buf;
    if (sized(&b[0], c, "legs") < 0 || sized(&b[1], 3 * c, "u") < 0 || sized(&b[3], 2 * n, "targets") < 0 ||
        sized(&b[5], 2 * m, "start") < 0 || sized(&b[6], 2 * m, "target") < 0 || sized(&b[7], m, "length") < 0 ||
        sized(&b[8], m, "need") < 0 || sized(&b[9], m, "reach") < 0 || sized(&b[10], m, "moved") < 0 ||
        within(legs, c, m, "legs") < 0)
        goto done;
    for (Py_ssize_t k = 0; k < c; k++)
        if (walkers[legs[k]] < 0 || walkers[legs[k]] >= n) {
            PyErr_SetString(PyExc_ValueError, "walkers: an arriving walker is outside the agents");
            goto done;
        }
    for (Py_ssize_t k = 0; k < c; k++) {
        int64_t i = legs[k], a = walkers[i];
        double x0 = target[2 * i], y0 = target[2 * i + 1];
        double x = u[2 * k] * width, y = u[2 * k + 1] * height;
        double dx = x - x0, dy = y - y0;
        double len = sqrt(dx * dx + dy * dy);
        double moves = reach[i] > 0 ? ceil(len / reach[i]) : (double)NEVER;
        targets[2 * a] = x;
        targets[2 * a + 1] = y;
        pause[a] = t + (low + span * u[2 * c + k]);
        start[2 * i] = x0;
        start[2 * i + 1] = y0;
        target[2 * i] = x;
        target[2 * i + 1] = y;
        length[i] = len;
        need[i] = len <= reach[i] ? 1 : (int64_t)moves;
        moved[i] = 0;
    }
    out = Py_NewRef(Py_None);
done:
    for (int k = 0; k < 11; k++) PyBuffer_Release(&b[k]);
    return out;
}

static PyMethodDef methods[] = {
    {"step", step, METH_VARARGS, "Move the walkers on the move one step in place; the legs that end."},
    {"arrive", arrive, METH_VARARGS, "Start the next legs of walkers who arrive: their draws, their legs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
