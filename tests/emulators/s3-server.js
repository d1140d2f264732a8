// s3rver 3.7 with the two multipart calls it lacks: AbortMultipartUpload (DELETE ?uploadId=)
// and ListMultipartUploads (GET /bucket?uploads). HubDr's tests need both to prove that an
// upload disposed without CompleteAsync leaves no pending multipart upload behind.
// Path-style requests only (the tests use ForcePathStyle). Test use only: no auth on these two.
'use strict';
const fs = require('fs');
const path = require('path');
const S3rver = require('s3rver');

const args = process.argv.slice(2);
const opt = name => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const directory = opt('--directory');
const address = opt('--address') || '127.0.0.1';
const port = Number(opt('--port') || 54569);
if (!directory) {
  console.error('usage: node s3-server.js --directory DIR [--address A] [--port P]');
  process.exit(2);
}

const esc = s => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const uploadsDir = bucket => path.join(directory, bucket, '._S3rver_uploads');

async function multipartExtras(ctx, next) {
  const segs = ctx.path.split('/').filter(s => s.length > 0);
  const bucket = segs.length > 0 ? decodeURIComponent(segs[0]) : undefined;
  if (bucket && ctx.method === 'DELETE' && segs.length > 1 && ctx.query.uploadId !== undefined) {
    const dir = path.join(uploadsDir(bucket), path.basename(String(ctx.query.uploadId)));
    if (!fs.existsSync(dir)) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    fs.rmSync(dir, { recursive: true, force: true });
    ctx.status = 204;
    return;
  }
  if (bucket && ctx.method === 'GET' && segs.length === 1 && ctx.query.uploads !== undefined) {
    if (!fs.existsSync(path.join(directory, bucket))) {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>';
      return;
    }
    const dir = uploadsDir(bucket);
    const ids = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    const uploads = ids
      .map(id => {
        const keyFile = path.join(dir, id, 'key');
        if (!fs.existsSync(keyFile)) return '';
        const key = fs.readFileSync(keyFile, 'utf8');
        const started = fs.statSync(keyFile).mtime.toISOString();
        return `<Upload><Key>${esc(key)}</Key><UploadId>${esc(id)}</UploadId><Initiated>${started}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`;
      })
      .join('');
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${esc(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`;
    return;
  }
  return next();
}

const server = new S3rver({ directory, address, port, silent: !process.env.HUBDR_EMU_VERBOSE, vhostBuckets: false });
// Run before s3rver's router (index 0 is its logger).
server.middleware.splice(1, 0, multipartExtras);
server.run().then(
  () => console.log(`S3 emulator listening on http://${address}:${port}`),
  err => {
    console.error(err);
    process.exit(1);
  },
);
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
