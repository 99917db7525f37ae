import * as fs from "node:fs"
import * as path from "node:path"

/** fsync a file or directory by path (a directory's sync makes the names in it durable). */
export const fsyncPath = (p: string, flags = "r") => {
  const fd = fs.openSync(p, flags)
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Put `data` at `file` so that, whatever crashes when, the name holds either what it held before
 * or all of `data`: write the temporary file `tmp` beside it, sync it, rename it over `file`, and
 * sync the directory so the rename itself survives. A failure removes `tmp` and rethrows.
 */
export const replaceFileDurably = (file: string, data: string | Uint8Array, tmp: string) => {
  const dir = path.dirname(file)
  fs.mkdirSync(dir, { recursive: true })
  try {
    const fd = fs.openSync(tmp, "wx", 0o644)
    try {
      fs.writeFileSync(fd, data)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, file)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw e
  }
  fsyncPath(dir)
}
