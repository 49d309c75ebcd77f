/* The per-column work of Kaldi's CM compression (src/matrix/compressed-matrix.cc), compiled:
 * each column's order statistics (ComputeColHeader) and FloatToChar of every element.
 *
 * Why C: in numpy these are a transposed copy, a sort and some fifteen passes over the matrix;
 * here two passes, each reading the matrix once, row by row, 64 columns at a time, in loops
 * across the columns that the compiler vectorises. No library compresses byte for byte as Kaldi does (kaldiio's
 * differs), so the kernels are ours. speech_reps/kaldi/compress.py computes the same bytes with
 * numpy where this module was not built (no C compiler at install); the tests run both against
 * real Kaldi's archives.
 *
 * Exactness. FloatToChar: Kaldi's f = (value - base) / (top - base) in float32, then
 * static_cast<int>(f * n + 0.5), the product float32 and the sum double (0.5 is a double), then
 * clamped to the piece's codes. Here the same float32 operations in the same order (built with
 * -ffp-contract=off: no fused multiply-add; no -ffast-math), the double sum replaced by a float
 * one with HALF_BELOW, exactly equal once truncated, and the clamp taken before the conversion:
 * x86 turns NaN and values out of int range into INT_MIN, which the clamp makes the piece's
 * lowest code, as here. Order statistics: values, whatever the selection that finds them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#ifdef __FAST_MATH__
#error "Kaldi's bytes need IEEE arithmetic as written: build without -ffast-math (-Ofast)"
#endif
#include <stdint.h>
#include <math.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
/* one build for every x86-64: the widest vectors the CPU running it has, chosen at load */
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

#define LANES 64  /* columns at a time in the order statistics: loops across them vectorise */

/* ---------------------------------------------------------------- FloatToChar */

/* The largest float below 0.5: for every float32 z in [0, 256], trunc(float(z + HALF_BELOW))
 * equals Kaldi's trunc(double(z) + 0.5) (tests/test_compress.py checks all of them), where
 * float(z + 0.5f) fails at z = 0.49999997. Float lanes are twice as many as double ones. */
#define HALF_BELOW 0.49999997f

/* FloatToChar of one row's columns (x[0..width)) into codes, given the columns' percentiles
 * p0, p25, p75 and the differences d1..d3 of the four; one loop without branches, which the
 * compiler vectorises across the columns */
VECTOR_CLONES
static void float_to_char_row(const float *restrict x, Py_ssize_t width, const float *restrict p0,
                              const float *restrict p25, const float *restrict p75,
                              const float *restrict d1, const float *restrict d2,
                              const float *restrict d3, int32_t *restrict codes)
{
    for (Py_ssize_t j = 0; j < width; j++) {
        /* every load first: loads under a condition would keep the loop from vectorising */
        const float v = x[j], q0 = p0[j], q25 = p25[j], q75 = p75[j];
        const float e1 = d1[j], e2 = d2[j], e3 = d3[j];
        const int low = v < q25, mid = (v >= q25) & (v < q75);
        const float base = low ? q0 : (mid ? q25 : q75);
        const float span = low ? e1 : (mid ? e2 : e3);
        const float n = low ? 64.0f : (mid ? 128.0f : 63.0f);
        const float first = low ? 0.0f : (mid ? 64.0f : 192.0f);
        const float z = (v - base) / span * n;
        float e = z + HALF_BELOW;             /* = double(z) + 0.5, once truncated */
        e = e > 0.0f ? e : 0.0f;              /* below 1 truncates to 0 or less */
        e = e < n ? e : n;                    /* at least n truncates to n or more */
        e = z < 2147483648.0f ? e : 0.0f;     /* NaN, and out of int range: INT_MIN */
        codes[j] = (int32_t)(first + truncf(e));  /* whole numbers: the sum is exact */
    }
}

/* codes (0..255) as bytes; a loop of its own, which the compiler vectorises */
VECTOR_CLONES
static void narrow_row(const int32_t *restrict codes, Py_ssize_t width, uint8_t *restrict out)
{
    for (Py_ssize_t j = 0; j < width; j++)
        out[j] = (uint8_t)codes[j];
}

#define PACK 8            /* rows whose codes make one uint64 of a column */
#define TILE_ROWS 64      /* a cache line of each column's codes at a time */
#define TILE_COLUMNS 1024  /* 64 x 256 and 64 x 2048 were slower, on a 1000 x 2048 matrix */

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pack_rows writes the codes of eight rows as one little-endian uint64"
#endif

/* each column's codes of PACK rows (codes: PACK x TILE_COLUMNS, row by row) as one uint64,
 * row r in byte r (little-endian); vectorised across the columns */
VECTOR_CLONES
static void pack_rows(const uint8_t *restrict codes, Py_ssize_t width, uint64_t *restrict packed)
{
    for (Py_ssize_t j = 0; j < width; j++) {
        uint64_t v = 0;
        for (int r = 0; r < PACK; r++)
            v |= (uint64_t)codes[r * TILE_COLUMNS + j] << (8 * r);
        packed[j] = v;
    }
}

/* FloatToChar of mat (rows x cols) into out (cols x rows: column by column, as CM stores them)
 * with the columns' decoded percentiles p (4 x cols: p0, p25, p75, p100); scratch: SCRATCH(cols)
 * bytes. A tile of TILE_ROWS x TILE_COLUMNS at a time: each row's piece is read
 * whole and each column's codes written eight at a time, a cache line's worth together
 * (written byte by byte, column by column, the writes took a third of the time) */
#define SCRATCH(cols) (sizeof(float) * 6 * (size_t)(cols) + sizeof(uint64_t) * TILE_ROWS / PACK \
                       * TILE_COLUMNS + TILE_ROWS * TILE_COLUMNS)

static void float_to_char_matrix(const float *mat, Py_ssize_t rows, Py_ssize_t cols,
                                 const float *p, uint8_t *out, void *scratch)
{
    float *params = scratch;
    uint64_t (*packed)[TILE_COLUMNS] = (uint64_t (*)[TILE_COLUMNS])(params + 6 * cols);
    uint8_t *tile = (uint8_t *)(packed + TILE_ROWS / PACK);
    float *p0 = params, *p25 = params + cols, *p75 = params + 2 * cols;
    float *d1 = params + 3 * cols, *d2 = params + 4 * cols, *d3 = params + 5 * cols;
    for (Py_ssize_t c = 0; c < cols; c++) {
        p0[c] = p[c];
        p25[c] = p[cols + c];
        p75[c] = p[2 * cols + c];
        d1[c] = p25[c] - p0[c];
        d2[c] = p75[c] - p25[c];
        d3[c] = p[3 * cols + c] - p75[c];
    }
    int32_t codes[TILE_COLUMNS];
    for (Py_ssize_t r0 = 0; r0 < rows; r0 += TILE_ROWS) {
        const Py_ssize_t height = rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS;
        const Py_ssize_t groups = height / PACK;  /* whole groups of PACK rows */
        for (Py_ssize_t c0 = 0; c0 < cols; c0 += TILE_COLUMNS) {
            const Py_ssize_t width = cols - c0 < TILE_COLUMNS ? cols - c0 : TILE_COLUMNS;
            for (Py_ssize_t i = 0; i < height; i++) {
                float_to_char_row(mat + (r0 + i) * cols + c0, width, p0 + c0, p25 + c0,
                                  p75 + c0, d1 + c0, d2 + c0, d3 + c0, codes);
                narrow_row(codes, width, tile + i * TILE_COLUMNS);
            }
            for (Py_ssize_t g = 0; g < groups; g++)
                pack_rows(tile + g * PACK * TILE_COLUMNS, width, packed[g]);
            uint8_t *o = out + c0 * rows + r0;
            for (Py_ssize_t j = 0; j < width; j++) {
                uint8_t *column = o + j * rows;
                for (Py_ssize_t g = 0; g < groups; g++)
                    memcpy(column + g * PACK, &packed[g][j], sizeof(uint64_t));
                for (Py_ssize_t i = groups * PACK; i < height; i++)
                    column[i] = tile[i * TILE_COLUMNS + j];
            }
        }
    }
}

/* ---------------------------------------------------------------- order statistics
 *
 * ComputeColHeader takes a column's 0th, (n/4)th, (3(n/4))th and (n-1)th smallest values
 * (Kaldi: std::nth_element). Any exact selection gives the same values; this one maps a
 * column's values onto BUCKETS buckets by a function that never decreases with the value
 * ((v - min) * scale in float, truncated), counts them, and keeps the values of the bucket that
 * holds the wanted rank: a value in a lower bucket is smaller than every value in it. Those few
 * are narrowed the same way until they are few enough for an insertion sort, or all equal. */
#define BUCKETS 256
#define FEW 32

/* the k-th smallest (from 0) of buf[0..n), which it reorders; n > k >= 0, values finite */
static float select_kth(float *buf, Py_ssize_t n, Py_ssize_t k)
{
    Py_ssize_t count[64];
    for (;;) {
        if (n <= FEW) {
            for (Py_ssize_t i = 1; i < n; i++) {
                const float v = buf[i];
                Py_ssize_t j = i;
                for (; j > 0 && buf[j - 1] > v; j--)
                    buf[j] = buf[j - 1];
                buf[j] = v;
            }
            return buf[k];
        }
        float lo = buf[0], hi = buf[0];
        for (Py_ssize_t i = 1; i < n; i++) {
            lo = buf[i] < lo ? buf[i] : lo;
            hi = buf[i] > hi ? buf[i] : hi;
        }
        if (lo == hi)
            return lo;
        /* in double: finite for any two finite floats. lo lands in bucket 0, hi in the last,
         * so the kept bucket is smaller than n */
        const double scale = 64.0 / ((double)hi - (double)lo);
        memset(count, 0, sizeof count);
        for (Py_ssize_t i = 0; i < n; i++) {
            const double b = ((double)buf[i] - (double)lo) * scale;
            count[b < 63.0 ? (int)b : 63]++;
        }
        int b = 0;
        while (k >= count[b])
            k -= count[b++];
        Py_ssize_t m = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            const double x = ((double)buf[i] - (double)lo) * scale;
            if ((x < 63.0 ? (int)x : 63) == b)
                buf[m++] = buf[i];
        }
        n = m;
    }
}

typedef uint32_t uint32_alias __attribute__((may_alias));

/* the running min and max of each column of one row (x), and whether a value is NaN or Inf
 * (an exponent of all ones); vectorised across the columns */
VECTOR_CLONES
static void extremes_row(const float *restrict x, Py_ssize_t width, float *restrict lo,
                         float *restrict hi, uint32_t *restrict bad)
{
    const uint32_alias *bits = (const uint32_alias *)x;
    for (Py_ssize_t j = 0; j < width; j++) {
        lo[j] = x[j] < lo[j] ? x[j] : lo[j];
        hi[j] = x[j] > hi[j] ? x[j] : hi[j];
        bad[j] |= (bits[j] & 0x7f800000u) == 0x7f800000u;
    }
}

/* bucket codes of one row's columns: (x - lo) * scale, truncated, at most top */
VECTOR_CLONES
static void buckets_row(const float *restrict x, Py_ssize_t width, const float *restrict lo,
                        const float *restrict scale, float top, int32_t *restrict codes)
{
    for (Py_ssize_t j = 0; j < width; j++) {
        float b = (x[j] - lo[j]) * scale[j];
        b = b < top ? b : top;
        codes[j] = (int32_t)b;
    }
}

#define CHUNK 16

typedef uint8_t bytes16 __attribute__((vector_size(CHUNK), aligned(1), may_alias));

/* The codes of CHUNK columns that equal the one wanted in their column (a or b): a byte of all
 * ones at each, in two uint64 (one vector compare each: the auto-vectoriser left it scalar) */
static inline void hits(const uint8_t *codes, const uint8_t *a, const uint8_t *b, uint64_t out[2])
{
    const bytes16 c = *(const bytes16 *)codes;
    const bytes16 hit = (bytes16)((c == *(const bytes16 *)a) | (c == *(const bytes16 *)b));
    memcpy(out, &hit, 2 * sizeof(uint64_t));
}

/* For each column j (count: buckets x LANES), the bucket holding rank k1 and the number of
 * values in lower buckets, and the same for k3; one running sum across all columns, which the
 * compiler vectorises (a column's own scan stops at its bucket but cannot be vectorised). */
VECTOR_CLONES
static void find_ranks(const int32_t *restrict count, int buckets, int32_t k1, int32_t k3,
                       int32_t *restrict b1, int32_t *restrict below1, int32_t *restrict b3,
                       int32_t *restrict below3)
{
    int32_t sum[LANES];
    for (int j = 0; j < LANES; j++)
        sum[j] = b1[j] = below1[j] = b3[j] = below3[j] = 0;
    for (int b = 0; b < buckets; b++) {
        const int32_t *c = count + b * LANES;
        for (int j = 0; j < LANES; j++) {
            /* the rank's bucket is the last whose lower sum is at most the rank */
            const int32_t lower = sum[j], take1 = lower <= k1, take3 = lower <= k3;
            b1[j] = take1 ? b : b1[j];
            below1[j] = take1 ? lower : below1[j];
            b3[j] = take3 ? b : b3[j];
            below3[j] = take3 ? lower : below3[j];
            sum[j] = lower + c[j];
        }
    }
}

typedef struct {
    Py_ssize_t lanes;   /* the widest block: min(cols, LANES) */
    Py_ssize_t stride;  /* codes per row: lanes rounded up to CHUNK (hits() reads CHUNK) */
    float *block;       /* rows x lanes: a block of columns, copied out of the matrix */
    uint8_t *codes;     /* rows x stride bucket codes */
    int32_t *count;     /* BUCKETS x LANES: bucket by bucket, a count per column */
    float *candidates;  /* 2 x lanes x rows */
} Scratch;

/* Rows 0, n/4, 3(n/4) and n-1 of each sorted column c0..c0+width of matrix into stats (4 x cols).
 * Returns 0, or -1 where a value is NaN or Inf. */
static int order_stats_block(const float *matrix, Py_ssize_t rows, Py_ssize_t cols,
                             Py_ssize_t c0, Py_ssize_t width, float *stats, Scratch s)
{
    const Py_ssize_t k1 = rows / 4, k3 = 3 * (rows / 4);
    /* about a bucket a value, at most BUCKETS: fewer buckets would leave more values to gather,
     * more would take longer to clear and scan than the values take to count */
    const int buckets = rows < 64 ? 64 : (rows > BUCKETS ? BUCKETS : (int)rows);
    /* the block's columns copied out once: the passes below then read it from cache, where
     * rows of the matrix, a page or more apart, miss the cache and the TLB each time */
    for (Py_ssize_t r = 0; r < rows; r++)
        memcpy(s.block + r * s.lanes, matrix + r * cols + c0, sizeof(float) * width);
    const float *block = s.block;  /* block[r * s.lanes + j]: element (r, c0 + j) */
    float lo[LANES], hi[LANES], scale[LANES];
    uint32_t bad[LANES] = {0};
    int32_t codes[LANES] = {0};  /* past width: 0 in every row (a wanted code is never 0 there) */
    memcpy(lo, block, sizeof(float) * width);
    memcpy(hi, block, sizeof(float) * width);
    for (Py_ssize_t r = 0; r < rows; r++)
        extremes_row(block + r * s.lanes, width, lo, hi, bad);
    for (Py_ssize_t j = 0; j < width; j++)
        if (bad[j])
            return -1;
    /* a column whose scale is not a finite float (constant, a range beyond float or too small
     * to divide by) gets scale 0, all its codes 0, and is done apart below */
    int direct[LANES];
    for (Py_ssize_t j = 0; j < width; j++) {
        scale[j] = (float)buckets / (hi[j] - lo[j]);
        direct[j] = lo[j] != hi[j] && scale[j] < 3.0e38f && hi[j] - lo[j] < 3.0e38f;
        scale[j] = direct[j] ? scale[j] : 0.0f;
    }
    memset(s.count, 0, sizeof(int32_t) * LANES * buckets);
    for (Py_ssize_t r = 0; r < rows; r++) {
        buckets_row(block + r * s.lanes, width, lo, scale, (float)(buckets - 1), codes);
        narrow_row(codes, s.stride, s.codes + r * s.stride);
        for (Py_ssize_t j = 0; j < width; j++)
            s.count[codes[j] * LANES + j]++;  /* a table per column: no increment waits */
    }
    /* the buckets of ranks k1 and k3, and how many values lie below each: a running sum over
     * the buckets, all columns at once */
    int32_t b1[LANES], b3[LANES], below1[LANES], below3[LANES];
    find_ranks(s.count, buckets, (int32_t)k1, (int32_t)k3, b1, below1, b3, below3);
    /* the values of those buckets, column by column: each run of CHUNK codes is compared at
     * once (vectorised), and only its hits are looked at */
    Py_ssize_t m1[LANES] = {0}, m3[LANES] = {0};
    float *c1 = s.candidates, *c3 = s.candidates + s.lanes * rows;
    uint8_t want1[LANES], want3[LANES];
    for (Py_ssize_t j = 0; j < LANES; j++) {
        want1[j] = j < width ? (uint8_t)b1[j] : 255;  /* past width the codes are 0: no hit */
        want3[j] = j < width ? (uint8_t)b3[j] : 255;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint8_t *row = s.codes + r * s.stride;
        const float *x = block + r * s.lanes;
        for (Py_ssize_t j0 = 0; j0 < width; j0 += CHUNK) {
            uint64_t found[2];
            hits(row + j0, want1 + j0, want3 + j0, found);
            for (int half = 0; half < 2; half++) {
                for (uint64_t bits = found[half]; bits != 0;) {  /* each hit: a byte of ones */
                    const int bit = __builtin_ctzll(bits);
                    const Py_ssize_t j = j0 + 8 * half + bit / 8;
                    bits &= ~(0xffull << bit);
                    if (row[j] == want1[j])
                        c1[j * rows + m1[j]++] = x[j];
                    if (row[j] == want3[j])
                        c3[j * rows + m3[j]++] = x[j];
                }
            }
        }
    }
    for (Py_ssize_t j = 0; j < width; j++) {
        float *st = stats + c0 + j;
        st[0] = lo[j];
        st[3 * cols] = hi[j];
        if (lo[j] == hi[j]) {
            st[cols] = st[2 * cols] = lo[j];
        } else if (direct[j]) {
            st[cols] = select_kth(c1 + j * rows, m1[j], k1 - below1[j]);
            st[2 * cols] = select_kth(c3 + j * rows, m3[j], k3 - below3[j]);
        } else {
            float *col = c1 + j * rows;
            for (Py_ssize_t r = 0; r < rows; r++)
                col[r] = block[r * s.lanes + j];
            st[cols] = select_kth(col, rows, k1);
            for (Py_ssize_t r = 0; r < rows; r++)
                col[r] = block[r * s.lanes + j];
            st[2 * cols] = select_kth(col, rows, k3);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- Python */

/* Whether rows x cols items of itemsize bytes (rows, cols at most Kaldi's int32) fill buf, whose
 * memory is aligned for them; ValueError naming what where not. */
static int fills(const Py_buffer *buf, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t itemsize,
                 const char *what)
{
    Py_ssize_t bytes;
    if (rows < 0 || cols < 0 || rows > INT32_MAX || cols > INT32_MAX
            || __builtin_mul_overflow(rows, cols, &bytes)
            || __builtin_mul_overflow(bytes, itemsize, &bytes) || buf->len != bytes
            || (uintptr_t)buf->buf % (uintptr_t)itemsize != 0) {
        PyErr_Format(PyExc_ValueError, "%s: not %zd x %zd aligned items of %zd bytes", what,
                     rows, cols, itemsize);
        return 0;
    }
    return 1;
}

static PyObject *column_stats(PyObject *self, PyObject *args)
{
    Py_buffer mat, stats;
    Py_ssize_t rows, cols;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*nn", &mat, &stats, &rows, &cols))
        return NULL;
    PyObject *result = NULL;
    Scratch s = {0, 0, NULL, NULL, NULL, NULL};
    s.lanes = cols < LANES ? cols : LANES;  /* scratch for narrow matrices: as narrow */
    s.stride = (s.lanes + CHUNK - 1) / CHUNK * CHUNK;
    if (rows < 5 || cols < 1) {
        PyErr_SetString(PyExc_ValueError, "column_stats: fewer than 5 rows or no column");
    } else if (!fills(&mat, rows, cols, sizeof(float), "column_stats: mat")
               || !fills(&stats, 4, cols, sizeof(float), "column_stats: stats")) {
        /* ValueError set */
    } else if ((s.block = PyMem_RawMalloc(sizeof(float) * (size_t)rows * s.lanes)) == NULL
               || (s.codes = PyMem_RawMalloc((size_t)rows * s.stride)) == NULL
               || (s.count = PyMem_RawMalloc(sizeof(int32_t) * LANES * BUCKETS)) == NULL
               || (s.candidates = PyMem_RawMalloc(sizeof(float) * 2 * s.lanes * (size_t)rows)) == NULL) {
        PyErr_NoMemory();
    } else {
        int status = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t c0 = 0; c0 < cols && status == 0; c0 += LANES)
            status = order_stats_block(mat.buf, rows, cols, c0,
                                       cols - c0 < LANES ? cols - c0 : LANES, stats.buf, s);
        Py_END_ALLOW_THREADS
        result = status == 0 ? Py_True : Py_False;
        Py_INCREF(result);
    }
    PyMem_RawFree(s.block);
    PyMem_RawFree(s.codes);
    PyMem_RawFree(s.count);
    PyMem_RawFree(s.candidates);
    PyBuffer_Release(&mat);
    PyBuffer_Release(&stats);
    return result;
}

static PyObject *float_to_char(PyObject *self, PyObject *args)
{
    Py_buffer mat, p, out;
    Py_ssize_t rows, cols;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*nn", &mat, &p, &out, &rows, &cols))
        return NULL;
    PyObject *result = NULL;
    if (rows < 1 || cols < 1) {
        PyErr_SetString(PyExc_ValueError, "float_to_char: no row or no column");
    } else if (!fills(&mat, rows, cols, sizeof(float), "float_to_char: mat")
               || !fills(&p, 4, cols, sizeof(float), "float_to_char: p")
               || !fills(&out, cols, rows, 1, "float_to_char: out")) {
        /* ValueError set */
    } else {
        void *scratch = PyMem_RawMalloc(SCRATCH(cols));  /* 8-byte aligned, as packed needs */
        if (scratch == NULL) {
            PyErr_NoMemory();
        } else {
            Py_BEGIN_ALLOW_THREADS
            float_to_char_matrix(mat.buf, rows, cols, p.buf, out.buf, scratch);
            Py_END_ALLOW_THREADS
            PyMem_RawFree(scratch);
            Py_INCREF(Py_None);
            result = Py_None;
        }
    }
    PyBuffer_Release(&mat);
    PyBuffer_Release(&p);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"column_stats", column_stats, METH_VARARGS,
     "column_stats(mat, stats, rows, cols) -> bool: rows 0, n/4, 3(n/4) and n-1 of each sorted\n"
     "column of mat (rows x cols float32, C order, rows >= 5) into stats (4 x cols float32);\n"
     "False, stats undefined, where mat has a NaN or Inf. Releases the GIL."},
    {"float_to_char", float_to_char, METH_VARARGS,
     "float_to_char(mat, p, out, rows, cols): Kaldi's FloatToChar of every element of mat\n"
     "(rows x cols float32, C order) with its column's decoded percentiles p (4 x cols float32:\n"
     "p0, p25, p75, p100) into out (cols x rows uint8: column by column, as CM stores them).\n"
     "Releases the GIL."},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_compress_kernels",
    "Kaldi's CM compression, its per-column work compiled (see speech_reps/kaldi/compress.py).",
    -1, methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__compress_kernels(void)
{
    return PyModule_Create(&module);
}
