/* pianoforge's C kernels. Phase: the same loops as the numba kernels _pghi_integrate_py (phase/pghi.py) and
 * _project_py (phase/griffinlim.py), with the same float32/float64 types at every step, so that the PGHI
 * result is bit-identical to numba's. Model: pf_bias_gelu, the numpy engine's bias + GELU (models/notes_numpy.py
 * gelu(), the same float32 operations in the same order, so bit-identical to it). Built on first use by
 * pianoforge/native (cc -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off) and loaded with ctypes: no
 * numba import, no JIT dispatch at start-up. The Python docstrings are the spec. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Rows [t_lo, t_hi) of the padded work arrays (row t at (t + 1) * w, bins at +1; pad columns: level -1, phase 0):
 * the phase gradient (time, frequency), the bucket level (-1: at the floor or past `last`) and the phase (NaN: to
 * be integrated, rows >= first). pf_pghi_integrate fills the rows just before the block that needs them, so that
 * a block's work arrays are still in cache when it is integrated. */
static void pghi_rows(const float *s, int64_t nt, int64_t nk, int64_t w, int64_t t_lo, int64_t t_hi, float floor_,
                      double scale, int64_t levels, int64_t first, int64_t last, float cf, float ct, const float *wk,
                      float *grad, int16_t *lev, double *phase) {
    const float half = 0.5f;
    for (int64_t t = t_lo; t < t_hi; t++) {
        int64_t row = (t + 1) * w + 1;
        const float *st = s + t * nk;
        lev[row - 1] = lev[row + nk] = -1;
        phase[row - 1] = phase[row + nk] = 0.0;
        for (int64_t k = 0; k < nk; k++) {
            int64_t i = row + k;
            float d;
            if (nk == 1) d = 0.0f;
            else if (k == 0) d = st[1] - st[0];
            else if (k == nk - 1) d = st[k] - st[k - 1];
            else d = half * (st[k + 1] - st[k - 1]);
            grad[2 * i] = wk[k] + cf * d;
            if (nt == 1) d = 0.0f;
            else if (t == 0) d = s[nk + k] - s[k];
            else if (t == nt - 1) d = st[k] - st[k - nk];
            else d = half * (st[k + nk] - st[k - nk]);
            grad[2 * i + 1] = ct * d;
            float v = st[k];
            lev[i] = -1;
            phase[i] = 0.0;
            if (v > floor_ && t < last) {
                int64_t lv = (int64_t)((double)(v - floor_) * scale);
                lev[i] = (int16_t)(lv < levels - 1 ? lv : levels - 1);
                if (t >= first) phase[i] = NAN;
            }
        }
    }
}

int pf_pghi_integrate(const float *s, int64_t nt, int64_t nk, float floor_, float top_, double hop, double n_fft,
                      double gamma, int64_t levels, int64_t block, int64_t first, int64_t last, double *carry,
                      float *phase_out) {
    const double twopi = 2.0 * M_PI;
    for (int64_t t = first; t < last; t++)
        for (int64_t k = 0; k < nk; k++) phase_out[t * nk + k] = 0.0f;
    float mx = top_;
    if (!(mx > floor_) || last <= first) {
        for (int64_t k = 0; k < nk; k++) carry[k] = 0.0;
        return 0;
    }
    double scale = (double)(levels - 1) / (double)(mx - floor_);
    int64_t w = nk + 2, npad = (nt + 2) * w;
    float *grad = malloc((size_t)(2 * npad) * sizeof(float));
    int16_t *lev = malloc((size_t)npad * sizeof(int16_t));
    double *phase = malloc((size_t)npad * sizeof(double));
    float *wk = malloc((size_t)nk * sizeof(float));
    int32_t *head = malloc((size_t)levels * sizeof(int32_t));
    int32_t *nxt = malloc((size_t)npad * sizeof(int32_t));
    int64_t *count = malloc((size_t)(levels + 1) * sizeof(int64_t));
    int64_t *start = malloc((size_t)levels * sizeof(int64_t));
    int32_t *order = malloc((size_t)(block * w) * sizeof(int32_t));
    if (!grad || !lev || !phase || !wk || !head || !nxt || !count || !start || !order) {
        free(grad); free(lev); free(phase); free(wk); free(head); free(nxt); free(count); free(start); free(order);
        return -1;
    }
    for (int64_t i = 0; i < w; i++) {  /* the pad row above frame 0 (row nt + 1, below the last, is never read) */
        lev[i] = -1;
        phase[i] = 0.0;
    }
    for (int64_t i = 0; i < levels; i++) head[i] = -1;
    float cf = (float)(hop * n_fft / gamma), ct = (float)(-gamma / (hop * n_fft)), half = 0.5f;
    for (int64_t k = 0; k < nk; k++) {
        double x = twopi * hop * (double)k / n_fft;
        wk[k] = (float)(x - twopi * floor(x / twopi));
    }
    int64_t ready = first;  /* rows [0, ready) are filled */
    pghi_rows(s, nt, nk, w, 0, ready, floor_, scale, levels, first, last, cf, ct, wk, grad, lev, phase);
    if (first > 0) {
        int64_t row = first * w + 1;
        for (int64_t k = 0; k < nk; k++) phase[row + k] = carry[k];
    }
    for (int64_t t0 = first; t0 < last; t0 += block) {
        int64_t t1 = last < t0 + block ? last : t0 + block;
        pghi_rows(s, nt, nk, w, ready, t1, floor_, scale, levels, first, last, cf, ct, wk, grad, lev, phase);
        ready = t1;
        int64_t lo = (t0 + 1) * w, hi = (t1 + 1) * w, top = -1;
        if (t0 > 0) {
            for (int64_t i = lo - w + 1; i < lo - 1; i++) {
                int64_t lv = lev[i];
                if (lv >= 0) {
                    nxt[i] = head[lv];
                    head[lv] = (int32_t)i;
                    if (lv > top) top = lv;
                }
            }
        }
        memset(count, 0, (size_t)(levels + 1) * sizeof(int64_t));
        for (int64_t i = lo; i < hi; i++)
            if (lev[i] >= 0) count[lev[i] + 1]++;
        int64_t acc = 0;
        for (int64_t lv = levels - 1; lv >= 0; lv--) {
            start[lv] = acc;
            acc += count[lv + 1];
        }
        int64_t n_seeds = acc, jj = 0;
        for (int64_t i = lo; i < hi; i++) {
            int64_t lv = lev[i];
            if (lv >= 0) order[start[lv]++] = (int32_t)i;
        }
        for (;;) {
            while (top >= 0 && head[top] < 0) top--;
            if (top < 0) {
                while (jj < n_seeds && !isnan(phase[order[jj]])) jj++;
                if (jj >= n_seeds) break;
                int64_t i = order[jj];
                phase[i] = 0.0;
                top = lev[i];
                head[top] = (int32_t)i;
                nxt[i] = -1;
                continue;
            }
            int64_t i = head[top];
            head[top] = nxt[i];
            double p = phase[i];
            float gt = grad[2 * i], gf = grad[2 * i + 1];
            for (int d = 0; d < 4; d++) {
                int64_t q;
                if (d == 0) {
                    q = i + w;
                    if (q >= hi || !isnan(phase[q])) continue;
                    phase[q] = p + (double)(half * (gt + grad[2 * q]));
                } else if (d == 1) {
                    q = i - w;
                    if (!isnan(phase[q])) continue;
                    phase[q] = p - (double)(half * (gt + grad[2 * q]));
                } else if (d == 2) {
                    q = i + 1;
                    if (!isnan(phase[q])) continue;
                    phase[q] = p + (double)(half * (gf + grad[2 * q + 1]));
                } else {
                    q = i - 1;
                    if (!isnan(phase[q])) continue;
                    phase[q] = p - (double)(half * (gf + grad[2 * q + 1]));
                }
                int64_t lq = lev[q];
                nxt[q] = head[lq];
                head[lq] = (int32_t)q;
                if (lq > top) top = lq;
            }
        }
    }
    for (int64_t t = first; t < last; t++) {
        int64_t row = (t + 1) * w + 1;
        for (int64_t k = 0; k < nk; k++) {
            double ph = phase[row + k] - M_PI * (double)k;
            phase_out[t * nk + k] = (float)(ph - twopi * floor(ph / twopi));
        }
    }
    int64_t row = last * w + 1;
    for (int64_t k = 0; k < nk; k++) carry[k] = phase[row + k];
    free(grad); free(lev); free(phase); free(wk); free(head); free(nxt); free(count); free(start); free(order);
    return 0;
}

void pf_project(const float *reb, const float *prev, const float *mag, int64_t n, float alpha, float *out) {
    const float eps2 = (float)(1e-16 * 1e-16);
    for (int64_t i = 0; i < n; i++) {
        float re = reb[2 * i] - alpha * prev[2 * i];
        float im = reb[2 * i + 1] - alpha * prev[2 * i + 1];
        float sc = mag[i] / sqrtf(re * re + im * im + eps2);
        out[2 * i] = re * sc;
        out[2 * i + 1] = im * sc;
    }
}

/* x[i, j] <- gelu(x[i, j] + bias[j]) in place, (rows, cols) float32 row-major: erf by the rational approximation
 * of Eigen's float32 erf on x / sqrt 2 clamped to [-4, 4] (models/notes_numpy.py erf/gelu, same operations in the
 * same order). Branch-free, so that gcc vectorizes it (with -fno-trapping-math). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))  /* 8 lanes where the CPU has them, chosen at load time */
#endif
void pf_bias_gelu(float *restrict x, const float *restrict bias, int64_t rows, int64_t cols) {
    const float r2 = (float)(1.0 / 1.4142135623730951);
    for (int64_t i = 0; i < rows; i++) {
        float *restrict xr = x + i * cols;
        for (int64_t j = 0; j < cols; j++) {
            float v = xr[j] + bias[j];
            float u = v * r2;
            u = u < -4.0f ? -4.0f : u;
            u = u > 4.0f ? 4.0f : u;
            float x2 = u * u;
            float p = -2.72614225801306e-10f;
            p = p * x2 + 2.77068142495902e-08f;
            p = p * x2 + -2.10102402082508e-06f;
            p = p * x2 + -5.69250639462346e-05f;
            p = p * x2 + -7.34990630326855e-04f;
            p = p * x2 + -2.95459980854025e-03f;
            p = p * x2 + -1.60960333262415e-02f;
            float q = -1.45660718464996e-05f;
            q = q * x2 + -2.13374055278905e-04f;
            q = q * x2 + -1.68282697438203e-03f;
            q = q * x2 + -7.37332916720468e-03f;
            q = q * x2 + -1.42647390514189e-02f;
            p = p * u / q;
            xr[j] = (p + 1.0f) * 0.5f * v;
        }
    }
}

/* Windowed overlap-add: out[b, i * hop + j] += frames[b, i, j] * win[j] for (batch, k, n) float32 frames into a
 * zeroed (batch, size) buffer (size >= (k - 1) * hop + n), then out *= inv_env (size,): npstream.Frames.synth's
 * numpy steps (window, overlap-add, envelope) in one pass; the overlap-adds run in frame order (numpy's did them in
 * another order: float rounding). */
void pf_ola(const float *restrict frames, const float *restrict win, const float *restrict inv_env, int64_t batch,
            int64_t k, int64_t n, int64_t hop, int64_t size, float *restrict out) {
    for (int64_t b = 0; b < batch; b++) {
        float *restrict o = out + b * size;
        const float *restrict f = frames + b * k * n;
        for (int64_t i = 0; i < k; i++) {
            float *restrict oi = o + i * hop;
            const float *restrict fi = f + i * n;
            for (int64_t j = 0; j < n; j++) oi[j] += fi[j] * win[j];
        }
        for (int64_t j = 0; j < size; j++) o[j] *= inv_env[j];
    }
}
