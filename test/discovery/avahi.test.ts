/**
 * The advertiser seen by an independent browser: Debian's avahi-daemon + avahi-browse, in a
 * private network namespace (`unshare -n -m`, as root) so nothing reaches the real network
 * and no avahi on the machine interferes. Inside it: lo up with MULTICAST, a tmpfs over /run,
 * a private system D-Bus, avahi-daemon restricted to lo, then the advertiser (a child node
 * process) on 127.0.0.1:5353.
 *
 * Needs root, unshare, ip, dbus-daemon, avahi-daemon and avahi-browse. Outside CI it skips
 * when one is missing; under CI=true it fails instead (.ci/run installs them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ADVERTISER = fileURLToPath(new URL('../../src/discovery/advertiser.js', import.meta.url));
const TOOLS = ['unshare', 'ip', 'dbus-daemon', 'avahi-daemon', 'avahi-browse'];

function missingPrerequisite(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces and avahi-daemon need it)';
  for (const t of TOOLS) {
    const r = spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' });
    if (r.status !== 0) return `${t} is not installed`;
  }
  const probe = spawnSync('unshare', ['-n', '-m', 'true']);
  if (probe.status !== 0) return 'cannot create a network namespace here';
  return null;
}

// The advertiser child: announce, print READY, say goodbye on SIGTERM.
const CHILD = `
const { BonjourAdvertiser } = await import(process.env.ADVERTISER);
const log = { info() {}, warn(...a) { console.error('warn', JSON.stringify(a)); }, debug() {}, child() { return log; } };
const adv = new BonjourAdvertiser({
  serverName: 'Büro, Backup', hostName: 'afpgw-avahi.local', port: 10548,
  timeMachineVolumes: [{ name: 'TM,1' }, { name: 'Zwei=2 \\\\ ü', uuid: '6331E2D1-446C-B68C-3066-D685AADBE911' }],
  model: 'TimeCapsule8,119', interfaces: ['127.0.0.1'], log,
});
await adv.start();
console.log(adv.announced ? 'READY' : 'NOT-ANNOUNCED');
process.on('SIGTERM', async () => { await adv.stop(); process.exit(0); });
setInterval(() => {}, 1000);
`;

const SCRIPT = `
set -u
work=$(mktemp -d)
cleanup() {
  [ -n "\${node_pid:-}" ] && kill "$node_pid" 2>/dev/null
  [ -n "\${avahi_pid:-}" ] && kill "$avahi_pid" 2>/dev/null
  [ -n "\${dbus_pid:-}" ] && kill "$dbus_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ip link set lo up
ip link set lo multicast on
mount -t tmpfs tmpfs /run
mkdir -p /run/dbus /run/avahi-daemon
chown avahi:avahi /run/avahi-daemon 2>/dev/null || true
dbus_pid=$(dbus-daemon --system --fork --nopidfile --print-pid) || { echo "dbus-daemon failed"; exit 1; }
cat > "$work/avahi.conf" <<'CONF'
[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
[publish]
publish-addresses=no
publish-hinfo=no
publish-workstation=no
publish-domain=no
CONF
avahi-daemon -f "$work/avahi.conf" --no-rlimits --no-chroot > "$work/avahi.log" 2>&1 &
avahi_pid=$!
for i in $(seq 50); do avahi-browse -tp _none._tcp >/dev/null 2>&1 && break; sleep 0.1; done
node --input-type=module -e "$CHILD" > "$work/node.out" 2> "$work/node.err" &
node_pid=$!
for i in $(seq 100); do grep -q READY "$work/node.out" 2>/dev/null && break; sleep 0.1; done
cat "$work/node.out"
sleep 0.5
for t in _adisk._tcp _afpovertcp._tcp _device-info._tcp; do
  echo "== $t"
  timeout 10 avahi-browse -rtp "$t"
done
avahi-browse -p _adisk._tcp > "$work/live.out" 2>&1 &
browse_pid=$!
sleep 1
kill -TERM "$node_pid"; wait "$node_pid" 2>/dev/null; node_pid=
# A goodbye (TTL 0) makes the cache drop the record one second later (RFC 6762 §10.1).
sleep 2.5
kill "$browse_pid" 2>/dev/null; wait "$browse_pid" 2>/dev/null
echo "== live browse across the goodbye"
cat "$work/live.out"
echo "== cache after goodbye"
timeout 5 avahi-browse -tpc _adisk._tcp
timeout 5 avahi-browse -tpc _afpovertcp._tcp
echo "== end"
cat "$work/node.err" >&2
`;

function runInNamespace(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('unshare', ['-n', '-m', 'bash', '-c', SCRIPT], {
      env: { ...process.env, ADVERTISER, CHILD },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** avahi-browse -p escapes bytes outside printable ASCII as \\DDD (decimal) and '.', ',', ' ' too. */
function unescapeAvahi(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^\d{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number(s.slice(i + 1, i + 4)));
      i += 3;
    } else bytes.push(...Buffer.from(s[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The resolved ('=') lines of one section: fields split on ';'. */
function resolved(stdout: string, type: string): string[][] {
  const section = stdout.split(`== ${type}\n`)[1]?.split('\n== ')[0] ?? '';
  return section
    .split('\n')
    .filter((l) => l.startsWith('=;'))
    .map((l) => l.split(';'));
}

/** TXT field of avahi-browse -p: "a" "b" ..., with \\ for a backslash inside. */
function txtStrings(field: string): string[] {
  return [...field.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => unescapeAvahi(m[1]!).replace(/\\(.)/g, '$1'));
}

const skip = missingPrerequisite();

test('avahi-browse sees the three services with the right records, and forgets them after the goodbyes', { skip: skip !== null && process.env.CI !== 'true' ? skip! : false }, async () => {
  if (skip !== null) throw new Error(`avahi test prerequisite missing under CI: ${skip}`);
  const { code, stdout, stderr } = await runInNamespace();
  const context = `exit ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
  assert.equal(code, 0, context);
  assert.match(stdout, /^READY$/m, context);

  const [adisk] = resolved(stdout, '_adisk._tcp');
  assert.ok(adisk, context);
  // =;iface;proto;name;type;domain;host;address;port;txt
  assert.equal(unescapeAvahi(adisk[3]!), 'Büro, Backup');
  assert.equal(adisk[6], 'afpgw-avahi.local');
  assert.equal(adisk[7], '127.0.0.1');
  assert.equal(adisk[8], '9');
  assert.deepEqual(txtStrings(adisk[9]!).sort(), [
    'dk0=adVN=TM\\,1,adVF=0x81',
    'dk1=adVN=Zwei=2 \\\\ ü,adVF=0x81,adVU=6331E2D1-446C-B68C-3066-D685AADBE911',
    'sys=waMa=0,adVF=0x100',
  ]);

  const [afp] = resolved(stdout, '_afpovertcp._tcp');
  assert.ok(afp, context);
  assert.equal(unescapeAvahi(afp[3]!), 'Büro, Backup');
  assert.equal(afp[8], '10548');

  const [dev] = resolved(stdout, '_device-info._tcp');
  assert.ok(dev, context);
  assert.deepEqual(txtStrings(dev[9]!), ['model=TimeCapsule8,119']);

  // The goodbyes (TTL 0) make a running browser report the removal...
  const live = stdout.split('== live browse across the goodbye\n')[1]?.split('== cache')[0] ?? '';
  assert.match(live, /^\+;lo;IPv4;B\\195\\188ro/m, context);
  assert.match(live, /^-;lo;IPv4;B\\195\\188ro\\044\\032Backup;Apple TimeMachine;local$/m, context);
  // ...and leave nothing in avahi's cache.
  const after = stdout.split('== cache after goodbye\n')[1]?.split('== end')[0] ?? 'missing';
  assert.equal(after.trim(), '', context);
});
