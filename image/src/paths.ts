/** Default locations of the image builder, all outside the repository. */
export const DEFAULT_CACHE_DIR = '/var/cache/torvm-image';
