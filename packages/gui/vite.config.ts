// Builds the GUI into plain files the daemon serves from memory: no inline
// script (the CSP forbids it), no CDN, no runtime download.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  // The GUI shares pure validators with the controller (core/bridge-line.ts).
  server: { fs: { allow: ['..'] } },
  build: {
    outDir: process.env.TORVM_GUI_OUT ?? 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    target: 'es2022',
  },
});
