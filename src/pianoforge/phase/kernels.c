/* pianoforge phase kernels in C: the same loops as the numba kernels _pghi_integrate_py (phase/pghi.py) and
 * _project_py (phase/griffinlim.py), with the same float32/float64 types at every step, so that the PGHI
 * result is bit-identical to numba's. Built on first use by phase/native.py (cc -O2 -ffp-contract=off) and
 * loaded with ctypes: no numba import, no JIT dispatch at start-up. The Python docstrings are the spec. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    float *grad = calloc((size_t)(2 * npad), sizeof(float));
    int16_t *lev = malloc((size_t)npad * sizeof(int16_t));
    double *phase = calloc((size_t)npad, sizeof(double));
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
    for (int64_t i = 0; i < npad; i++) lev[i] = -1;
    for (int64_t i = 0; i < levels; i++) head[i] = -1;
    float cf = (float)(hop * n_fft / gamma), ct = (float)(-gamma / (hop * n_fft)), half = 0.5f;
    for (int64_t k = 0; k < nk; k++) {
        double x = twopi * hop * (double)k / n_fft;
        wk[k] = (float)(x - twopi * floor(x / twopi));
    }
    for (int64_t t = 0; t < nt; t++) {
        int64_t row = (t + 1) * w + 1;
        const float *st = s + t * nk;
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
            if (v > floor_ && t < last) {
                int64_t lv = (int64_t)((double)(v - floor_) * scale);
                lev[i] = (int16_t)(lv < levels - 1 ? lv : levels - 1);
                if (t >= first) phase[i] = NAN;
            }
        }
    }
    if (first > 0) {
        int64_t row = first * w + 1;
        for (int64_t k = 0; k < nk; k++) phase[row + k] = carry[k];
    }
    for (int64_t t0 = first; t0 < last; t0 += block) {
        int64_t t1 = last < t0 + block ? last : t0 + block;
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
