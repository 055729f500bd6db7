// An image as a step value, without sharp: what the daemon needs to check arguments (its import
// graph stays light), and what image.ts decodes into and encodes from.

/** 8-bit interleaved pixels (1 = gray, 3 = RGB, 4 = RGBA). */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

export function isImage(v: unknown): v is RawImage {
  const o = v as RawImage | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    o.data instanceof Uint8Array &&
    Number.isInteger(o.width) &&
    Number.isInteger(o.height) &&
    [1, 3, 4].includes(o.channels)
  );
}

export const IMAGE_FORMATS = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const;
export type ImageFormat = keyof typeof IMAGE_FORMATS;
