// The console is served by the coordinator under /console/ (coordinator/console).
// FERRY_CONSOLE_OUT: where tools/build-console puts the build (default dist/).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: process.env.FERRY_CONSOLE_OUT || 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2048,
  },
});
