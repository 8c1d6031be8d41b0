// Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms
// for Convolutional Neural Networks", CVPR 2016) for the 3x3, stride-1,
// padding-1 convolutions that make up most of a ResNet: forward, input
// gradient and weight gradient, with 16 multiplies per 2x2 outputs and input
// channel where the direct correlation takes 36.
//
// In the paper's notation, per 4x4 input tile d (tiles 2 apart) and filter g:
//   Y = A^T [ U . V ] A,   U = G g G^T,   V = B^T d B   (. elementwise, summed over channels)
// with
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// The sum over channels is 16 products of matrices (one per element xi of the
// 4x4 tile): M_xi [O x tiles] = U_xi [O x C] V_xi [C x tiles], which the
// conv_flat kernels compute (a correlation whose taps are channels). The
// weight gradient is the same algebra backwards:
//   dU_xi = sum over tiles of (A dY A^T)_xi V_xi,   dg = G^T dU G.
// The input gradient is this forward applied to dy with the kernel flipped and
// its channels swapped (a stride-1 padding-1 3x3 correlation too).
//
// Two layouts of the tiles. On canvases (images of 8x8 and more): the
// conv_canvas plan of a 4x4 stride-2 correlation (its phases hold the tile
// corners), images side by side, band by band, the products on the conv_flat
// kernels. As matrices (`matrices`): the tiles of the batch, a block of them
// at a time (tile_block), are the columns of 16 matrices V_xi [C x tiles] and
// each product is one sgemm; a block is transformed, multiplied and
// transformed back while it is in one core's cache (the weight gradient's
// blocks add into their run's dU_xi). On a 4x4 image a canvas spends a third
// of its grid on the gaps between images and a band's products are short. The
// transforms run over 16 tiles at a time in both.
//
// The matrices also take F(4x4, 3x3) (`m` = 4; the same paper, section 4.2):
// 6x6 tiles 4 apart, 36 matrices, 36 multiplies per 4x4 outputs and input
// channel against the direct correlation's 144 (F(2x2, 3x3): 16 per 2x2, so
// 64 per 4x4), and 36 floats to transform and move per 16 outputs where
// F(2x2, 3x3) moves 64. Its transforms multiply by 2, 4, 5 and 8, so it rounds
// more: on ResNet-18's layers its outputs differ from F(2x2, 3x3)'s by 1e-5
// to 2e-5 of their largest value (conv_winograd.cpp gives the matrices).
//
// Rounding differs from the direct correlation's (the transforms add before
// they multiply); the error stays near float's precision times the sums' size
// (tests compare with the naive loops at 1e-4, F(4x4, 3x3) too).
// Bands of images are fixed by the shapes; per-band weight gradients are
// added in band order; as matrices, the blocks and the runs of blocks of the
// weight gradient are fixed by the shapes and the runs' sums added in run
// order: the same bits at any thread count.
#pragma once

namespace mt::conv_winograd {

// The shapes this computes: kernel 3x3, stride 1, padding 1.
bool applies(int kh, int kw, int stride, int pad);

struct Problem {
  int N = 0, C = 0, H = 0, W = 0;  // input [N, C, H, W]
  int O = 0;                       // output channels: output [N, O, H, W]
  const float* x = nullptr;
  // [O, C, 3, 3]; with flip, [C, O, 3, 3] read with its channels swapped and
  // the kernel turned by 180 degrees (the input gradient: dx is this of dy).
  const float* w = nullptr;
  bool flip = false;
  // Or null: U = G g G^T of every (output, input) pair, [16][O][C] for the
  // unflipped problem, as transform_weights gives it (the forward computes it
  // once and the input gradient, the flipped problem with O and C swapped,
  // reads its own from it: the same bits as transforming again).
  const float* U = nullptr;
  bool matrices = false;  // the tiles as the columns of 16 (m = 4: 36) matrices (above), else on canvases
  // The output tile's side: 2, F(2x2, 3x3); or 4, F(4x4, 3x3) (6x6 input
  // tiles 4 apart, 36 products per 4x4 outputs where the direct correlation
  // takes 144; matrices only, 36 of them, and U null). Its transforms
  // multiply by up to 8, so it rounds more (tests/test_conv_flat.cpp's bound).
  int m = 2;
  // Matrices: tiles per block, a multiple of 16, or 0 for the choice by shape
  // (block_tiles below).
  // Each block's tiles are transformed, multiplied and transformed back by one
  // thread while they are in its cache.
  int tile_block = 0;
};

// y = the correlation (plus bias[o], or null) when !accumulate, written as
// bias + v (0.f + v without one); y += the correlation when accumulate.
void forward(const Problem& p, const float* bias, float* y, bool accumulate);

// dw [O, C, 3, 3] += the weight gradient for dy [N, O, H, W] (p.flip must be false).
void grad_weight(const Problem& p, const float* dy, float* dw);
// Matrices: the tiles of a block of the forward (or, weight_grad, the weight
// gradient): p.tile_block, or the choice by shape (conv_winograd.cpp, tile_block).
int block_tiles(const Problem& p, bool weight_grad);
// U [16][O][C] of p's weights (unflipped, F(2x2, 3x3)), for Problem::U.
void transform_weights(const Problem& p, float* U);

}  // namespace mt::conv_winograd
