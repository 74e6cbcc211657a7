// Vite build of the dashboard: relative asset paths (served at /_/ by pocketbun, or from any
// static folder), hashed file names, no source maps, one JS and one CSS chunk.
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

export default defineConfig({
  base: './',
  plugins: [preact()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2020',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
});
