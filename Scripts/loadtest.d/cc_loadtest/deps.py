"""Tools the harness needs, installed on first use: gcc (Debian), the
compiled generator (cached outside the repository), matplotlib (PyPI)."""
import hashlib
import importlib
import os
import shutil
import subprocess
import sys

from .util import SetupError, log

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # Scripts/loadtest.d

_apt_updated = False


def apt_install(*pkgs, timeout=600):
    """Install Debian packages (we run as root on the project's machines)."""
    global _apt_updated
    if not shutil.which("apt-get"):
        raise SetupError("apt-get not found; install %s by hand" % " ".join(pkgs))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else [])
    try:
        if not _apt_updated:
            subprocess.run(prefix + ["apt-get", "update", "-qq"], env=env, timeout=timeout,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _apt_updated = True
        r = subprocess.run(prefix + ["apt-get", "install", "-y", "-qq", *pkgs], env=env, timeout=timeout,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except subprocess.TimeoutExpired:
        raise SetupError("apt-get install %s timed out" % " ".join(pkgs))
    if r.returncode != 0:
        raise SetupError("apt-get install %s failed: %s" % (" ".join(pkgs), r.stderr.strip()[-400:]))


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = os.path.join(base, "control-center")
    try:
        os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK):
            return d
    except OSError:
        pass
    d = os.path.join(os.getcwd(), "var", "cache", "loadtest")
    os.makedirs(d, exist_ok=True)
    return d


def loadgen_binary():
    """Path of the compiled HTTP load generator (loadgen.c)."""
    return c_binary("loadgen")


def subscriber_binary():
    """Path of the compiled live-channel subscriber client (subscriber.c)."""
    return c_binary("subscriber")


def c_binary(name):
    """Path of Scripts/loadtest.d/NAME.c compiled, compiling it when the source changed."""
    with open(os.path.join(HERE, name + ".c"), "rb") as f:
        src = f.read()
    digest = hashlib.sha256(src).hexdigest()[:16]
    path = os.path.join(cache_dir(), name + "-" + digest)
    if os.path.exists(path) and os.access(path, os.X_OK):
        return path
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        log("installing gcc (Debian) to build %s.c" % name)
        apt_install("gcc", "libc6-dev")
        cc = shutil.which("gcc")
        if not cc:
            raise SetupError("gcc is still missing after apt-get install")
    tmp = path + ".tmp%d" % os.getpid()
    r = subprocess.run([cc, "-O2", "-pthread", "-Wno-format-truncation", "-o", tmp, os.path.join(HERE, name + ".c"),
                        "-lm"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if r.returncode != 0:
        raise SetupError("building %s.c failed:\n%s" % (name, r.stdout))
    os.replace(tmp, path)
    log("built %s" % path)
    return path


def ensure_wrk():
    w = shutil.which("wrk")
    if w:
        return w
    try:
        log("installing wrk (Debian)")
        apt_install("wrk")
    except SetupError as e:
        log("wrk unavailable: %s" % e)
        return None
    return shutil.which("wrk")


def ensure_nginx():
    n = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if n:
        return n
    log("installing nginx (Debian)")
    apt_install("nginx")
    n = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not n:
        raise SetupError("nginx is still missing after apt-get install")
    return n


def matplotlib_pyplot(mode):
    """mode: 'yes' installs matplotlib from PyPI when missing, 'available'
    uses it only if importable, 'no' never draws. Returns pyplot or None."""
    if mode == "no":
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except Exception:
        if mode != "yes":
            return None
    log("installing matplotlib from PyPI for the charts")
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                            "matplotlib"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        if r.returncode != 0:
            log("pip install matplotlib failed; no charts: " + r.stdout.strip()[-300:])
            return None
        importlib.invalidate_caches()
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except Exception as e:  # no network, no pip: the report is still complete without charts
        log("matplotlib unavailable, no charts: %s" % e)
        return None


def ensure_browser():
    """Headless Chromium, chromedriver and Selenium (Debian's, for /usr/bin/python3): ui-soak's browser."""
    def present():
        return (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")
                and subprocess.run(["/usr/bin/python3", "-c", "import selenium"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL).returncode == 0)
    if present():
        return
    log("installing chromium, chromium-driver and python3-selenium (Debian)")
    apt_install("python3", "chromium", "chromium-driver", "python3-selenium")
    if not present():
        raise SetupError("chromium, chromedriver or python3-selenium still missing after apt-get install")
