// What the user chose, as [{ blob, path }]: from the file pickers
// (webkitRelativePath for a folder) or from a drop (files and folders,
// walked with the File and Directory Entries API).

/** Most files in one torrent (a .torrent stays well under the 4 MiB the API takes). */
export const MAX_FILES = 50000;

export function pickedFiles(input) {
  return [...input.files].map((f) => ({ blob: f, path: f.webkitRelativePath || f.name }));
}

/**
 * The dropped files. The entries must be taken during the drop event
 * (the list empties after it), so call this from the handler, unawaited.
 */
export function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items]
    .filter((item) => item.kind === 'file')
    .map((item) => item.webkitGetAsEntry?.())
    .filter(Boolean);
  if (entries.length === 0) {
    return Promise.resolve([...dataTransfer.files].map((f) => ({ blob: f, path: f.name })));
  }
  return (async () => {
    const out = [];
    for (const entry of entries) await walk(entry, '', out);
    return out;
  })();
}

async function walk(entry, prefix, out) {
  if (out.length > MAX_FILES) throw new Error(`more than ${MAX_FILES.toLocaleString('en')} files`);
  const path = prefix + entry.name;
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ blob: file, path });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    // readEntries gives a batch at a time (100 in Chromium) until empty.
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, `${path}/`, out);
    }
  }
}

/** Bytes for people: binary units, as clients show them. */
export function formatBytes(n) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n.toLocaleString('en')} bytes` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
