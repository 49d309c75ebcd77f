/* Kaldi's per-frame work of fbank and MFCC (feature-window.cc ProcessWindow, feature-fbank.cc,
 * mel-computations.cc), compiled: from the samples to each frame's mel energies (and energy).
 *
 * Why C: numpy runs each step as a pass of its own over a block of frames, and its FFT
 * (pocketfft, one frame at a time) alone costs about what Kaldi's whole frame does. Here
 * sixteen frames are computed together, one in each lane of the vectors: every step, the FFT's
 * butterflies too, is a loop across the lanes, which the compiler vectorises. No library does
 * this batched real FFT with Kaldi's windowing (kaldi-native-fbank computes a frame at a time);
 * speech_reps/frontend/numpy_backend.py computes the same features with numpy where this module
 * was not built, and the golden tests hold both to real Kaldi's output.
 *
 * Per frame, in Kaldi's order: dither (noise given by the caller), DC offset removal, the raw
 * energy, pre-emphasis, the window, the energy; the real FFT of the zero-padded frame (a
 * complex FFT of half the size, decimation in frequency, then Kaldi's split into the real
 * transform's bins); the power spectrum (its square root without use-power); the mel banks'
 * sums. The log, energy floor, DCT and lifter stay in numpy (vectorised there already).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
/* one build for every x86-64: the widest vectors the CPU running it has, chosen at load */
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

#define L 16  /* frames computed together: one per lane */

typedef struct {
    Py_ssize_t size, shift, padded;  /* window, shift and FFT size in samples */
    int remove_dc, use_power, energy;  /* energy: 0 none, 1 raw (before pre-emphasis), 2 after */
    float preemph, dither;
    const float *window;              /* size */
    const int32_t *bitrev;            /* padded / 2: the complex FFT's output order */
    const float *twiddle;             /* padded / 4 x (cos, -sin) of 2 pi k / (padded / 2) */
    const float *split;               /* (last - first) x (cos, -sin) of 2 pi k / padded */
    Py_ssize_t first, last;           /* the FFT bins the banks weigh: [first, last) */
    Py_ssize_t banks;                 /* mel bins */
    const int32_t *bank_start;        /* banks: first bin (from first) of each */
    const int32_t *bank_length;       /* banks: bins of each */
    const float *bank_weight;         /* the weights, bank after bank */
} Plan;

/* x: padded rows of L lanes (row i: sample i of each frame). The frames' windowing, in place;
 * energy[l]: sum of squares where plan->energy asks */
VECTOR_CLONES
static void window_frames(const Plan *plan, float *restrict x, double *restrict energy)
{
    const Py_ssize_t n = plan->size;
    if (plan->remove_dc) {
        double sum[L] = {0};
        for (Py_ssize_t i = 0; i < n; i++)
            for (int l = 0; l < L; l++)
                sum[l] += x[i * L + l];
        float mean[L];
        for (int l = 0; l < L; l++)
            mean[l] = (float)(sum[l] / (double)n);
        for (Py_ssize_t i = 0; i < n; i++)
            for (int l = 0; l < L; l++)
                x[i * L + l] -= mean[l];
    }
    if (plan->energy == 1)
        for (Py_ssize_t i = 0; i < n; i++)
            for (int l = 0; l < L; l++)
                energy[l] += (double)x[i * L + l] * x[i * L + l];
    if (plan->preemph != 0.0f) {
        const float c = plan->preemph;
        for (Py_ssize_t i = n - 1; i > 0; i--)  /* from the end: each step uses the old values */
            for (int l = 0; l < L; l++)
                x[i * L + l] -= c * x[(i - 1) * L + l];
        for (int l = 0; l < L; l++)
            x[l] -= c * x[l];
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const float w = plan->window[i];
        for (int l = 0; l < L; l++)
            x[i * L + l] *= w;
    }
    if (plan->energy == 2)
        for (Py_ssize_t i = 0; i < n; i++)
            for (int l = 0; l < L; l++)
                energy[l] += (double)x[i * L + l] * x[i * L + l];
}

/* The complex FFT (forward, unscaled) of z[k] = x[2k] + i x[2k+1], k < m = padded / 2, in place:
 * real parts in the even rows of x, imaginary in the odd; decimation in frequency, so the
 * output is in bit-reversed order. Every butterfly is a loop across the lanes. */
VECTOR_CLONES
static void fft_frames(const Plan *plan, float *restrict x)
{
    const Py_ssize_t m = plan->padded / 2;
    for (Py_ssize_t half = m / 2, step = 1; half >= 1; half /= 2, step *= 2) {
        for (Py_ssize_t s = 0; s < m; s += 2 * half) {
            for (Py_ssize_t k = 0; k < half; k++) {
                const float wr = plan->twiddle[2 * k * step], wi = plan->twiddle[2 * k * step + 1];
                float *ar = x + 2 * (s + k) * L, *ai = ar + L;
                float *br = x + 2 * (s + k + half) * L, *bi = br + L;
                for (int l = 0; l < L; l++) {
                    const float ur = ar[l] - br[l], ui = ai[l] - bi[l];
                    ar[l] += br[l];
                    ai[l] += bi[l];
                    br[l] = ur * wr - ui * wi;
                    bi[l] = ur * wi + ui * wr;
                }
            }
        }
    }
}

/* The real transform's power spectrum at bins [first, last) from the complex FFT (x), into
 * power ((last - first) rows of L lanes); its square root without use-power */
VECTOR_CLONES
static void power_spectrum(const Plan *plan, const float *restrict x, float *restrict power)
{
    const Py_ssize_t m = plan->padded / 2;
    for (Py_ssize_t k = plan->first; k < plan->last; k++) {
        const Py_ssize_t k1 = k < m ? k : k - m, k2 = k1 == 0 ? 0 : m - k1;  /* k, m - k mod m */
        const float *a = x + 2 * (Py_ssize_t)plan->bitrev[k1] * L;  /* Z[k] */
        const float *b = x + 2 * (Py_ssize_t)plan->bitrev[k2] * L;  /* Z[m - k], conjugated */
        const float wr = plan->split[2 * (k - plan->first)], wi = plan->split[2 * (k - plan->first) + 1];
        float *p = power + (k - plan->first) * L;
        for (int l = 0; l < L; l++) {
            const float ar = a[l], ai = a[L + l], br = b[l], bi = -b[L + l];
            const float er = 0.5f * (ar + br), ei = 0.5f * (ai + bi);  /* the even samples' */
            const float or_ = 0.5f * (ai - bi), oi = -0.5f * (ar - br);  /* the odd samples' */
            const float xr = er + (wr * or_ - wi * oi), xi = ei + (wr * oi + wi * or_);
            p[l] = xr * xr + xi * xi;
        }
        if (!plan->use_power)
            for (int l = 0; l < L; l++)
                p[l] = sqrtf(p[l]);
    }
}

/* each bank's weighted sum of the power spectrum, for the lanes' frames, into mel (L x banks);
 * sum: L floats of scratch */
VECTOR_CLONES
static void mel_sums(const Plan *plan, const float *restrict power, float *restrict mel,
                     float *restrict sum)
{
    const float *restrict w = plan->bank_weight;
    for (Py_ssize_t b = 0; b < plan->banks; b++) {
        for (int l = 0; l < L; l++)
            sum[l] = 0.0f;
        const int32_t n = plan->bank_length[b];
        for (int32_t j = 0; j < n; j++) {
            const float weight = w[j];
            const float *restrict row = power + ((Py_ssize_t)plan->bank_start[b] + j) * L;
#pragma GCC unroll 1  /* unrolled, GCC kept the lanes in scalar registers */
            for (int l = 0; l < L; l++)
                sum[l] += weight * row[l];
        }
        w += n;
        for (int l = 0; l < L; l++)
            mel[l * plan->banks + b] = sum[l];
    }
}

/* frames [f0, f0 + count) of samples (frame f from sample f * shift), noise (count x size, or
 * NULL) added with the dither: their mel sums into mel (count x banks) and energies (count) */
static void mel_frames(const Plan *plan, const float *samples, const float *noise,
                       Py_ssize_t count, float *mel, float *energies, float *x, float *power,
                       float *lanes_mel)
{
    for (Py_ssize_t f0 = 0; f0 < count; f0 += L) {
        const int lanes = count - f0 < L ? (int)(count - f0) : L;
        /* row i: sample i of each frame; zero padding, and zero lanes past the last frame */
        memset(x + plan->size * L, 0, sizeof(float) * (plan->padded - plan->size) * L);
        for (int l = 0; l < L; l++) {
            if (l >= lanes) {
                for (Py_ssize_t i = 0; i < plan->size; i++)
                    x[i * L + l] = 0.0f;
                continue;
            }
            const float *frame = samples + (f0 + l) * plan->shift;
            if (noise == NULL) {
                for (Py_ssize_t i = 0; i < plan->size; i++)
                    x[i * L + l] = frame[i];
            } else {
                const float *z = noise + (f0 + l) * plan->size;
                for (Py_ssize_t i = 0; i < plan->size; i++)
                    x[i * L + l] = frame[i] + plan->dither * z[i];
            }
        }
        double energy[L] = {0};
        window_frames(plan, x, energy);
        fft_frames(plan, x);
        power_spectrum(plan, x, power);
        mel_sums(plan, power, lanes_mel, lanes_mel + L * plan->banks);
        memcpy(mel + f0 * plan->banks, lanes_mel, sizeof(float) * lanes * plan->banks);
        if (energies != NULL)
            for (int l = 0; l < lanes; l++)
                energies[f0 + l] = (float)energy[l];
    }
}

/* ---------------------------------------------------------------- Python */

/* Whether a x b items of 4 bytes fill buf, aligned for them; ValueError naming it where not.
 * a, b: non-negative, at most INT32_MAX (checked by the caller) */
static int sized(Py_buffer *buf, Py_ssize_t a, Py_ssize_t b, const char *name)
{
    Py_ssize_t bytes;
    if (__builtin_mul_overflow(a, b, &bytes) || __builtin_mul_overflow(bytes, 4, &bytes)
            || buf->len != bytes || (uintptr_t)buf->buf % 4 != 0) {
        PyErr_Format(PyExc_ValueError, "mel_spectra: %s is not %zd x %zd aligned 4-byte items",
                     name, a, b);
        return 0;
    }
    return 1;
}

static PyObject *mel_spectra(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer samples, noise, window, bitrev, twiddle, split, start, length, weight, mel, energy;
    Plan plan;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*w*w*nnnnnniiiff", &samples, &noise, &window,
                          &bitrev, &twiddle, &split, &start, &length, &weight, &mel, &energy,
                          &count, &plan.size, &plan.shift, &plan.padded, &plan.first, &plan.last,
                          &plan.remove_dc, &plan.use_power, &plan.energy, &plan.preemph,
                          &plan.dither))
        return NULL;
    Py_buffer *all[] = {&samples, &noise, &window, &bitrev, &twiddle, &split, &start, &length,
                        &weight, &mel, &energy};
    PyObject *result = NULL;
    const Py_ssize_t m = plan.padded / 2, banks = start.len / (Py_ssize_t)sizeof(int32_t);
    Py_ssize_t weights = 0;
    int ok = count >= 0 && plan.size > 0 && plan.shift > 0 && plan.padded >= 4
             && (plan.padded & (plan.padded - 1)) == 0 && plan.size <= plan.padded
             && plan.first >= 0 && plan.first < plan.last && plan.last <= m + 1 && banks > 0
             && plan.energy >= 0 && plan.energy <= 2;
    if (!ok)
        PyErr_SetString(PyExc_ValueError, "mel_spectra: bad sizes or options");
    /* every count below INT32_MAX, so that the products below cannot overflow Py_ssize_t */
    ok = ok && count <= INT32_MAX && plan.size <= INT32_MAX && plan.shift <= INT32_MAX
         && plan.padded <= INT32_MAX && banks <= INT32_MAX;
    if (!ok && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "mel_spectra: a size beyond int32");
    /* the samples: (count - 1) shifts and a window */
    ok = ok && sized(&samples, 1, count > 0 ? (count - 1) * plan.shift + plan.size : 0, "samples")
         && sized(&start, banks, 1, "bank_start")
         && sized(&window, plan.size, 1, "window") && sized(&bitrev, m, 1, "bitrev")
         && (noise.len == 0 || sized(&noise, count, plan.size, "noise"))
         && sized(&twiddle, m, 1, "twiddle") && sized(&split, 2, plan.last - plan.first, "split")
         && sized(&length, banks, 1, "length") && sized(&mel, count, banks, "mel")
         && sized(&energy, plan.energy ? count : 0, 1, "energy");
    if (ok) {
        const int32_t *s = start.buf, *n = length.buf, *r = bitrev.buf;
        for (Py_ssize_t b = 0; b < banks && ok; b++) {
            ok = s[b] >= 0 && n[b] > 0 && (Py_ssize_t)s[b] + n[b] <= plan.last - plan.first;
            weights += n[b];
        }
        for (Py_ssize_t k = 0; k < m && ok; k++)
            ok = r[k] >= 0 && r[k] < m;
        if (!ok)
            PyErr_SetString(PyExc_ValueError, "mel_spectra: a bank or the bit reversal is out of range");
        ok = ok && sized(&weight, weights, 1, "weight");
    }
    if (ok) {
        plan.window = window.buf;
        plan.bitrev = bitrev.buf;
        plan.twiddle = twiddle.buf;
        plan.split = split.buf;
        plan.banks = banks;
        plan.bank_start = start.buf;
        plan.bank_length = length.buf;
        plan.bank_weight = weight.buf;
        /* scratch: the frames (padded rows of L lanes), the power spectrum, the lanes' mel
         * sums and a row of L sums */
        float *x = PyMem_RawMalloc(sizeof(float) * L * ((size_t)plan.padded
                                   + (size_t)(plan.last - plan.first) + (size_t)banks + 1));
        if (x == NULL) {
            PyErr_NoMemory();
        } else {
            Py_BEGIN_ALLOW_THREADS
            mel_frames(&plan, samples.buf, noise.len ? noise.buf : NULL, count, mel.buf,
                       plan.energy ? energy.buf : NULL, x, x + L * plan.padded,
                       x + L * (plan.padded + plan.last - plan.first));
            Py_END_ALLOW_THREADS
            PyMem_RawFree(x);
            Py_INCREF(Py_None);
            result = Py_None;
        }
    }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        PyBuffer_Release(all[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"mel_spectra", mel_spectra, METH_VARARGS,
     "mel_spectra(samples, noise, window, bitrev, twiddle, split, bank_start, bank_length,\n"
     "bank_weight, mel, energy, count, size, shift, padded, first, last, remove_dc, use_power,\n"
     "energy_mode, preemph, dither): the mel sums (count x banks float32, into mel) and\n"
     "energies (sums of squares, into energy: count floats, or empty with energy_mode 0) of\n"
     "count frames of samples (frame f from sample f * shift); noise: count x size floats\n"
     "added times dither, or empty. The constants come from numpy_backend._CompiledFrames.\n"
     "Releases the GIL."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fbank_kernels",
    "Kaldi's fbank/MFCC per-frame work, compiled (see speech_reps/frontend/numpy_backend.py).",
    -1, methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__fbank_kernels(void)
{
    return PyModule_Create(&module);
}
