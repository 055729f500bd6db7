// An encoded file as a step value (what image_save and audio_save produce): the runner never writes
// files itself, so the bytes travel to the client, which writes them under its --output-dir.
export interface EncodedFile {
  kind: 'file';
  content_type: string;
  data: Uint8Array;
}

export function isEncodedFile(v: unknown): v is EncodedFile {
  const o = v as EncodedFile | null;
  return typeof o === 'object' && o !== null && o.kind === 'file' && typeof o.content_type === 'string' && o.data instanceof Uint8Array;
}
