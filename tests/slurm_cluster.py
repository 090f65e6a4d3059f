"""A real, throw-away single-node Slurm cluster on localhost, for tests.

Stdlib only.  Usage::

    with SlurmCluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", "--wait", "--wrap", "hostname"],
                       env={**os.environ, **cluster.env}, check=True)

or ``python tests/slurm_cluster.py /tmp/some/dir`` for a smoke test.

Design notes (found on Debian bookworm, Slurm 22.05, munge 0.5.15, no
systemd, no cgroups, running as root):

* Everything lives under ``root``: slurm.conf, spool, state save, logs, pid
  files, the munge key, seed, socket and log.  Slurm and munge run as root.
* munge: clients would use the compiled-in socket /run/munge/munge.socket.2;
  ``AuthInfo=socket=...`` in slurm.conf points auth/munge and cred/munge at our
  private munged for slurmctld, slurmd, slurmstepd and every client command,
  because they all read slurm.conf.  munged refuses a socket directory that
  is not world-executable, so ``root`` and ``root/munge`` are made 0755.
* The one thing written outside ``root`` is /etc/slurm/slurm.conf (the
  compiled-in default).  Reason: the snakemake slurm jobstep executor starts
  ``srun`` with every ``SLURM_*`` variable stripped (SLURM_CONF included), and
  callers may run it with a minimal PATH, so neither SLURM_CONF nor an ``srun``
  wrapper earlier in PATH reliably reaches it; only the default path always
  does.  Any existing file there is backed up and restored by stop(); a file we
  wrote ourselves (it carries MARKER) is treated as stale and overwritten.
  Because that path is global, only one SlurmCluster may run per machine at a
  time (an flock on LOCK_FILE enforces it).
* No accounting (accounting_storage/none): ``sacct`` does not work; job state
  is only visible in ``squeue``/``scontrol`` for MinJobAge seconds after a job
  ends, so MinJobAge is 300 s (well above 3x any status-check interval).
* Jobs that request no memory would otherwise get the whole node under
  CR_CPU_Memory (and so run one at a time); DefMemPerCPU avoids that.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
LOCK_FILE = Path("/tmp/s2l-slurm-cluster.lock")
MARKER = "# written by s2l tests/slurm_cluster.py"
CLIENT_TIMEOUT = 30


def _which(name: str) -> str | None:
    # the daemons live in /usr/sbin, which a non-login PATH may lack
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    return shutil.which(name, path=path)


def ensure_installed() -> None:
    """Install slurm-wlm and munge with apt-get if any daemon is missing."""
    missing = [d for d in DAEMONS if _which(d) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"Slurm test cluster: {', '.join(missing)} missing and not root, "
            "cannot apt-get install slurm-wlm munge"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"],
    ):
        try:
            proc = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=900
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"Slurm test cluster: `{' '.join(cmd)}` failed: {e}")
        if proc.returncode != 0:
            raise RuntimeError(
                f"Slurm test cluster: `{' '.join(cmd)}` exited {proc.returncode}:\n"
                + (proc.stdout + proc.stderr)[-3000:]
            )
    still = [d for d in DAEMONS if _which(d) is None]
    if still:
        raise RuntimeError(
            f"Slurm test cluster: {', '.join(still)} still missing after "
            "apt-get install slurm-wlm munge"
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"  ({path}: {e})"
    return "\n".join("  " + line for line in lines[-n:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still answers kill(0); reap it if it is ours
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


class SlurmCluster:
    """Single-node Slurm (slurmctld + slurmd + munged) with all state in root."""

    partition = "s2l"
    cluster_name = "s2ltest"

    def __init__(
        self,
        root: Path,
        cpus: int | None = None,
        real_memory_mb: int | None = None,
        def_mem_per_cpu_mb: int = 1024,
        start_timeout: float = 60.0,
    ):
        self.root = Path(root).absolute()
        self.etc = self.root / "etc"
        self.conf = self.etc / "slurm.conf"
        self.log_dir = self.root / "log"
        self.run_dir = self.root / "run"
        self.munge_dir = self.root / "munge"
        self.munge_socket = self.munge_dir / "munge.socket.2"
        self.munge_key = self.munge_dir / "munge.key"
        self.spool_dir = self.root / "spool" / "slurmd"
        self.state_dir = self.root / "state"
        self.cpus = cpus or os.cpu_count() or 1
        self.real_memory_mb = real_memory_mb or self._default_memory()
        self.def_mem_per_cpu_mb = def_mem_per_cpu_mb
        self.start_timeout = start_timeout
        self.node = socket.gethostname().split(".")[0]
        self._procs: dict[str, subprocess.Popen] = {}
        self._backup: Path | None = None
        self._wrote_default_conf = False
        self._lock_fd: int | None = None
        self._started = False

    # ------------------------------------------------------------------ api
    @property
    def env(self) -> dict[str, str]:
        """Variables a client process (sbatch, squeue, snakemake) needs."""
        return {"SLURM_CONF": str(self.conf)}

    def environ(self) -> dict[str, str]:
        """os.environ plus env, with /usr/sbin etc. on PATH."""
        e = {**os.environ, **self.env}
        e["PATH"] = e.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
        return e

    def run(self, *cmd: str, check: bool = True, timeout: float = CLIENT_TIMEOUT,
            **kw) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster, capture text."""
        return subprocess.run(
            list(cmd), env=kw.pop("env", self.environ()), capture_output=True,
            text=True, check=check, timeout=timeout, **kw,
        )

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "SlurmCluster":
        if self._started:
            return self
        ensure_installed()
        self._take_lock()
        self._started = True
        atexit.register(self.stop)
        try:
            self._make_dirs()
            self._write_conf()
            self._install_default_conf()
            self._start_munged()
            self._start_daemon("slurmctld", ["-D", "-c", "-f", str(self.conf)])
            self._wait_for(self._ctld_up, "slurmctld to answer `scontrol ping`")
            self._start_daemon("slurmd", ["-D", "-f", str(self.conf)])
            self._wait_for(self._node_idle, f"node {self.node} to be idle")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            atexit.unregister(self.stop)
        except Exception:
            pass
        try:
            if "slurmctld" in self._procs or self._pid_from_file("slurmctld"):
                self._cancel_all_jobs()
        finally:
            for name in ("slurmd", "slurmctld", "munged"):
                self._kill(name)
            self._restore_default_conf()
            self._release_lock()

    # ------------------------------------------------------------ internals
    @staticmethod
    def _default_memory() -> int:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    # slurmd drains the node if RealMemory exceeds what it sees
                    return max(1024, int(int(line.split()[1]) / 1024 * 0.9))
        except OSError:
            pass
        return 4096

    def _topology(self) -> str:
        """CPUs=N, plus the socket/core layout `slurmd -C` reports if it agrees
        (slurmd drains a node whose configured CPUs exceed what it finds)."""
        keys = ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
        try:
            out = subprocess.run([_which("slurmd") or "slurmd", "-C"],
                                 capture_output=True, text=True, timeout=30).stdout
            hw = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
            if int(hw.get("CPUs", -1)) == self.cpus:
                return " ".join([f"CPUs={self.cpus}"] + [f"{k}={hw[k]}" for k in keys])
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
        return f"CPUs={self.cpus}"

    def _take_lock(self) -> None:
        fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"Slurm test cluster: another SlurmCluster holds {LOCK_FILE} "
                "(only one per machine: it owns /etc/slurm/slurm.conf)"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {self.root}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _make_dirs(self) -> None:
        for d in (self.etc, self.log_dir, self.run_dir, self.spool_dir,
                  self.state_dir, self.munge_dir):
            d.mkdir(parents=True, exist_ok=True)
        # munged: socket dir must be reachable by all, and not group/other
        # writable; the same goes for the directories above it that we own.
        for d in (self.root, self.munge_dir):
            d.chmod(0o755)

    def _write_conf(self) -> None:
        r = self.root
        ctld_port, slurmd_port = _free_port(), _free_port()
        plugstack = self.etc / "plugstack.conf"
        plugstack.write_text("")  # ignore /etc/slurm/plugstack.conf.d
        lines = [
            MARKER,
            f"# root: {r}",
            f"ClusterName={self.cluster_name}",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.state_dir}",
            f"SlurmdSpoolDir={self.spool_dir}",
            f"SlurmctldPidFile={self.run_dir / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.run_dir / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            f"PlugStackConfig={plugstack}",
            "MailProg=/bin/true",
            # no systemd / cgroups in containers
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            f"DefMemPerCPU={self.def_mem_per_cpu_mb}",
            "MpiDefault=none",
            "ReturnToService=2",
            "MinJobAge=300",
            "KillWait=5",
            "InactiveLimit=0",
            "SlurmdTimeout=300",
            f"NodeName={self.node} NodeHostname={self.node} NodeAddr=127.0.0.1 "
            f"{self._topology()} RealMemory={self.real_memory_mb} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes={self.node} Default=YES "
            "MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _install_default_conf(self) -> None:
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        if DEFAULT_CONF.exists() or DEFAULT_CONF.is_symlink():
            try:
                ours = DEFAULT_CONF.read_text(errors="replace").startswith(MARKER)
            except OSError:
                ours = False
            if not ours:
                self._backup = self.root / "etc" / "slurm.conf.system-backup"
                shutil.copy2(DEFAULT_CONF, self._backup, follow_symlinks=False)
        shutil.copyfile(self.conf, DEFAULT_CONF)
        self._wrote_default_conf = True

    def _restore_default_conf(self) -> None:
        if not self._wrote_default_conf:
            return
        self._wrote_default_conf = False
        try:
            if self._backup is not None and (
                self._backup.exists() or self._backup.is_symlink()
            ):
                DEFAULT_CONF.unlink(missing_ok=True)
                shutil.copy2(self._backup, DEFAULT_CONF, follow_symlinks=False)
            else:
                DEFAULT_CONF.unlink(missing_ok=True)
        except OSError as e:
            print(f"slurm_cluster: could not restore {DEFAULT_CONF}: {e}",
                  file=sys.stderr)

    def _start_munged(self) -> None:
        if not self.munge_key.exists():
            mungekey = _which("mungekey")
            if mungekey:
                subprocess.run([mungekey, "--create", "--keyfile",
                                str(self.munge_key)], check=True,
                               capture_output=True)
            else:
                self.munge_key.write_bytes(os.urandom(1024))
        self.munge_key.chmod(0o600)
        self._start_daemon("munged", [
            "--foreground",
            f"--socket={self.munge_socket}",
            f"--key-file={self.munge_key}",
            f"--pid-file={self.munge_dir / 'munged.pid'}",
            # in the foreground munged logs to stderr, i.e. log/munged.log
            f"--seed-file={self.munge_dir / 'munged.seed'}",
        ])
        self._wait_for(self._munge_ok, "munged to encode/decode a credential")

    def _daemon_log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _start_daemon(self, name: str, args: list[str]) -> None:
        exe = _which(name)
        if exe is None:
            raise RuntimeError(f"Slurm test cluster: {name} not found")
        # slurmctld/slurmd also write SlurmctldLogFile/SlurmdLogFile
        stdout = "munged.log" if name == "munged" else f"{name}.stdout"
        out = open(self.log_dir / stdout, "ab")
        try:
            # foreground (-D/--foreground) so we hold the process and notice
            # an early exit; own session so ^C in a test run does not hit it
            self._procs[name] = subprocess.Popen(
                [exe, *args], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=self.environ(),
                start_new_session=True, cwd=self.root,
            )
        finally:
            out.close()

    def _pid_from_file(self, name: str) -> int | None:
        f = (self.munge_dir / "munged.pid" if name == "munged"
             else self.run_dir / f"{name}.pid")
        try:
            return int(f.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _kill(self, name: str, timeout: float = 15.0) -> None:
        pids = set()
        proc = self._procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            pids.add(proc.pid)
        pid = self._pid_from_file(name)
        if pid and _pid_alive(pid):
            try:  # only trust a pid file whose process is really that daemon
                if name in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                    pids.add(pid)
            except OSError:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc is not None:
                    proc.poll()
                if not any(_pid_alive(p) for p in pids):
                    break
                time.sleep(0.2)
            else:
                continue
            break
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def _cancel_all_jobs(self) -> None:
        try:
            q = self.run("squeue", "-h", "-o", "%A", check=False, timeout=10)
            ids = q.stdout.split()
            if ids:
                self.run("scancel", *ids, check=False, timeout=10)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    q = self.run("squeue", "-h", "-t", "R,CG,PD", "-o", "%A",
                                 check=False, timeout=10)
                    if not q.stdout.split():
                        break
                    time.sleep(0.5)
        except (OSError, subprocess.SubprocessError):
            pass

    def _check_procs(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise RuntimeError(self._failure(
                    f"{name} exited with status {proc.returncode} during start"))

    def _wait_for(self, ok, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_procs()
            try:
                good, last = ok()
            except (OSError, subprocess.SubprocessError) as e:
                good, last = False, str(e)
            if good:
                return
            time.sleep(0.5)
        raise RuntimeError(self._failure(
            f"timed out after {self.start_timeout:.0f}s waiting for {what}; "
            f"last answer: {last.strip()}"))

    def _failure(self, msg: str) -> str:
        parts = [f"Slurm test cluster in {self.root}: {msg}"]
        for f in sorted(self.log_dir.glob("*")):
            parts.append(f"--- {f}:\n{_tail(f)}")
        return "\n".join(parts)

    def _munge_ok(self) -> tuple[bool, str]:
        if not self.munge_socket.exists():
            return False, "no socket yet"
        enc = subprocess.run(["munge", "-n", "-S", str(self.munge_socket)],
                             capture_output=True, timeout=10)
        if enc.returncode != 0:
            return False, enc.stderr.decode(errors="replace")
        dec = subprocess.run(["unmunge", "-S", str(self.munge_socket)],
                             input=enc.stdout, capture_output=True, timeout=10)
        return dec.returncode == 0, dec.stderr.decode(errors="replace")

    def _ctld_up(self) -> tuple[bool, str]:
        p = self.run("scontrol", "ping", check=False, timeout=10)
        return (p.returncode == 0 and "UP" in p.stdout), p.stdout + p.stderr

    def _node_idle(self) -> tuple[bool, str]:
        p = self.run("sinfo", "-h", "-N", "-n", self.node, "-o", "%t %E",
                     check=False, timeout=10)
        state = p.stdout.split()[0] if p.stdout.split() else ""
        if state.startswith(("drain", "drng", "inval", "fail")):
            # a config mismatch will not heal: fail fast with the reason
            raise RuntimeError(self._failure(
                f"node {self.node} is {p.stdout.strip()}"))
        return state == "idle", p.stdout + p.stderr


def _main(root: Path) -> int:
    with SlurmCluster(root) as c:
        print(f"cluster up: conf={c.conf} partition={c.partition} "
              f"node={c.node} logs={c.log_dir}")
        print(c.run("sinfo").stdout)
        outfile = c.root / "job-%j.out"
        sb = c.run("sbatch", "--parsable", "--wait", "-o", str(outfile),
                   "--wrap", "hostname; echo ok; srun hostname", timeout=120)
        jobid = sb.stdout.strip().split(";")[0]
        out = Path(str(outfile).replace("%j", jobid)).read_text()
        print(f"sbatch --wait job {jobid} output:\n{out}")
        assert "ok" in out, out
        # the snakemake jobstep runs srun with SLURM_* stripped: prove the
        # default config path is enough
        sr = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "srun", "hostname"],
                            capture_output=True, text=True, timeout=60, check=True)
        print(f"env -i srun hostname: {sr.stdout.strip()}")
        print(c.run("squeue", "-t", "all", "-o", "%A %j %T %N").stdout)
        sj = c.run("scontrol", "show", "job", jobid).stdout
        print("\n".join(line for line in sj.splitlines()
                        if any(k in line for k in ("JobId=", "JobState=", "NodeList="))))
        sa = c.run("sacct", "-j", jobid, check=False)
        print(f"sacct rc={sa.returncode}: {(sa.stdout + sa.stderr).strip()[:200]}")
    print("cluster stopped;", f"{DEFAULT_CONF} exists: {DEFAULT_CONF.exists()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} ROOT_DIR")
    sys.exit(_main(Path(sys.argv[1])))
