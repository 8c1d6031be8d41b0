// The canvases the conv_flat kernels (engine/conv_flat.h) read and write: how
// a band of G images is laid out so that every convolution pass is one
// correlation along flattened rows, for any stride, kernel and padding.
//
// x canvas. Each image is zero-padded by p and split into s x s phase planes
// (phase (r, t) holds the padded pixels at rows r, r+s, ..., columns t, t+s,
// ...; stride 1 has one phase, the padded image), A x E each. The G images of
// a band sit side by side, Sw columns apart, in planes of `ld` columns; only
// the phases some tap reads are kept. Output (i, j) of image b is grid
// position q = i * ld + b * Sw + j and reads, for tap (c, ki, kj), the phase
// (ki mod s, kj mod s) of channel c at row i + ki / s, column b Sw + j + kj / s:
// one offset per tap, taps[(c * kh + ki) * kw + kj]. With stride s a
// correlation of stride 1 on the phases, so the kernels only ever move by 1.
// Neighbouring images share the zero columns both have (stride 1, 3x3: one),
// so an image costs Sw = W + 1 columns for W outputs: small late-stage images
// (7x7, 4x4) fill vectors by being many to a band.
//
// dy canvas. dy of image b at row dy_top + i, column b * Sw + dy_left + j of
// each plane, zeros elsewhere: the weight gradient reads it at grid position
// q (dy_grid + q: grid position 0 sits on a 64-byte boundary), and every
// input-gradient phase reads it as a correlation's input.
//
// Input gradient by phases (the transposed convolution): dx at padded
// position (a s + r, e s + t) is
//   sum over o and the taps ki = r, kj = t (mod s) of W[o, c, ki, kj] dy[o, a - (ki-r)/s, e - (kj-t)/s]
// a correlation of the dy canvas with the flipped sub-kernel of that phase,
// written on a grid of the same ld and Sw and scattered into dx. Stride 1 has
// one phase: the full correlation of dy with the flipped kernel.
#pragma once
#include <cstdint>
#include <vector>

namespace mt::conv_canvas {

struct Geometry {
  int N, C, H, W;  // input
  int O, kh, kw;   // weight
  int s, p;        // stride, padding
  int Ho, Wo;      // output
};

// One phase (r, t) of the input gradient.
struct DxPhase {
  int r = 0, t = 0;
  int a0 = 0, na = 0;          // its grid rows a' < na are phase rows a0 + a': dx row (a0 + a') s + r - p
  int e0 = 0, ne = 0;          // and its columns e' < ne: dx column (e0 + e') s + t - p
  std::vector<int32_t> taps;   // offsets into the dy canvas, in (o, ki, kj) order
  std::vector<int32_t> weight; // the matching (o * C + 0) * kh * kw + ki * kw + kj: W's index for channel 0
  int64_t Q = 0;               // grid positions up to the last output + 1
};

struct Plan {
  Geometry g;
  int G = 1;                   // images per band
  int phases = 1;              // phase planes per channel in the x canvas
  std::vector<int> slot;       // [s * s]: plane of phase (r, t) within a channel, or -1 (unused)
  int A = 0, E = 0;            // rows and columns of an image's phase plane
  int Sw = 0, ld = 0;          // columns from one image to the next; columns of a canvas row
  int64_t x_plane = 0, x_floats = 0;   // x canvas: floats per plane, in all (with slack)
  std::vector<int32_t> taps;   // forward and weight-gradient taps into the x canvas, (c, ki, kj) order
  int64_t Q = 0;               // forward grid positions up to the last output + 1
  int dy_top = 0, dy_left = 0, dy_rows = 0;
  int64_t dy_grid = 0;         // dy canvas: the float of grid position 0 (dy[0, 0, 0]) in plane 0
  int64_t dy_plane = 0, dy_floats = 0;
  std::vector<DxPhase> dx;     // the s * s input-gradient phases (those with dx positions)
};

// Images per band for a geometry: enough to fill rows of `columns` columns,
// and about `positions` grid positions per band (the backward's register
// tiles sum over a whole band before they reduce their lanes), then evened
// out over the batch (the bands of N images all hold ceil(N / bands) but the last).
int images_per_band(const Geometry& g, int64_t positions = 0, int columns = 64, bool with_dx = true);
// with_dx false: no input-gradient phases and no dy canvas (dy_* are 0).
Plan make_plan(const Geometry& g, int G, bool with_dx = true);

// The canvases of `images` (<= G) consecutive images, x and dy in NCHW.
void stage_x(const Plan& P, const float* x, int images, float* canvas);
void stage_dy(const Plan& P, const float* dy, int images, float* canvas);
// y (NCHW, fresh) from a forward grid (out_plane floats per channel), plus bias (or null).
void store_y(const Plan& P, const float* out, int64_t out_plane, const float* bias, int images, float* y);
// dx (NCHW) of channels [c0, c1) at the positions of phase ph, from its grid
// (out: channel c0 first; null: zeros): written as 0.f + v when fresh, else added to.
void store_dx(const Plan& P, const DxPhase& ph, const float* out, int64_t out_plane, int images, int c0, int c1,
              bool fresh, float* dx);

}  // namespace mt::conv_canvas
