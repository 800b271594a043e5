/**
 * The TensorFlow.js backend: choosing and starting one (init.ts), the wasm fixes (wasm.ts,
 * wasm_threads.ts), WebGPU (webgpu.ts), OpenBLAS matmul kernels (blas.ts, blas_kernels.ts) and
 * the WebAssembly SIMD host kernels (simd.ts).
 *
 * This file is the only way into the folder from outside it.
 *
 * @module
 */
export * from "./blas.ts";
export * from "./blas_kernels.ts";
export * from "./heap.ts";
export * from "./native.ts";
export * from "./init.ts";
export * from "./simd.ts";
export * from "./wasm.ts";
export * from "./wasm_threads.ts";
export * from "./webgpu.ts";
