"""Issue 13: deploy/ is safe when copied, and the Dockerfile is what CI builds and runs.

Parses the files an operator copies (the static pods, the systemd units, the
EncryptionConfiguration, the kubeadm ClusterConfiguration, ./Dockerfile) and checks them against
each other and against the built binary (KMS_PLUGIN_BINARY): every flag is one `kms-plugin serve`
accepts, every placeholder makes the binary refuse to start, the paths and ports agree,
`systemd-analyze verify` accepts each unit, and the runtime image holds every library the binary
needs.

Run by ctest (tests/deploy/CMakeLists.txt) as
  KMS_PLUGIN_BINARY=build/kms-plugin /usr/bin/python3 -m unittest -v deploy_files_test
"""

import glob
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("KMS_PLUGIN_BINARY", os.path.join(REPO, "build", "kms-plugin"))
DEPLOY = os.path.join(REPO, "deploy")

STATIC_PODS = sorted(glob.glob(os.path.join(DEPLOY, "**", "kms-plugin.yaml"), recursive=True))
UNITS = sorted(glob.glob(os.path.join(DEPLOY, "**", "kms-plugin.service"), recursive=True))
POD_INSTALL_PATH = "/etc/kubernetes/manifests/kms-plugin.yaml"
UNIT_INSTALL_PATH = "/etc/systemd/system/kms-plugin.service"


def rel(path):
    return os.path.relpath(path, REPO)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def subcommand_flags(subcommand):
    """The long flags `kms-plugin <subcommand> --help` lists (asks the real binary)."""
    out = subprocess.run([BINARY, subcommand, "--help"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    flags = set(re.findall(r"^\s+(?:-\w,\s*)?(--[a-z0-9][a-z0-9-]*)", out, re.M))
    if not flags:
        raise AssertionError(f"no flags in `kms-plugin {subcommand} --help`:\n{out}")
    return flags


def split_flags(args):
    """[(flag, value or None)] of an argument list: --f=v, --f v, or a bare --f."""
    pairs = []
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("--"):
            raise AssertionError(f"unexpected argument {a!r} in {args}")
        if "=" in a:
            flag, value = a.split("=", 1)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            flag, value = a, args[i + 1]
            i += 1
        else:
            flag, value = a, None
        pairs.append((flag, value))
        i += 1
    return pairs


def pod_container(path):
    doc = yaml.safe_load(read(path))
    assert doc["kind"] == "Pod", path
    containers = doc["spec"]["containers"]
    assert len(containers) == 1, path
    return doc, containers[0]


def pod_serve_args(path):
    _, c = pod_container(path)
    cmd = c["command"] + c.get("args", [])
    assert cmd[:2] == ["/usr/local/bin/kms-plugin", "serve"], (path, cmd[:2])
    return cmd[2:]


def unit_sections(path):
    """{section: [(key, value)]} of a unit file, continuation lines joined."""
    text = re.sub(r"\\\n", " ", read(path))
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            current = sections.setdefault(m.group(1), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def unit_exec_start(path):
    argv = shlex.split(dict(unit_sections(path)["Service"])["ExecStart"])
    assert argv[:2] == ["/usr/local/bin/kms-plugin", "serve"], (path, argv[:2])
    return argv[2:]


def encryption_config():
    return yaml.safe_load(read(os.path.join(DEPLOY, "encryption-config.yaml")))


def kms_endpoint():
    cfg = encryption_config()
    kms = [p["kms"] for r in cfg["resources"] for p in r["providers"] if "kms" in p]
    assert len(kms) == 1, kms
    assert kms[0]["apiVersion"] == "v2", "without apiVersion: v2 it is a disabled KMS v1 provider"
    return kms[0]["endpoint"]


def socket_path(endpoint):
    assert endpoint.startswith("unix:///") and not endpoint.startswith("unix:///@"), endpoint
    return endpoint[len("unix://"):]


class ManifestsTest(unittest.TestCase):
    """The static pods and the systemd units."""

    @classmethod
    def setUpClass(cls):
        cls.serve_flags = subcommand_flags("serve")

    def test_there_is_a_default_and_a_variant_per_backend_for_pod_and_systemd(self):
        for d in ["", "vault", "pkcs11", "gcp", "azure", "local-single-node"]:
            for f in ["kms-plugin.yaml", "kms-plugin.service"]:
                self.assertTrue(os.path.isfile(os.path.join(DEPLOY, d, f)), f"deploy/{d}/{f}")
        self.assertEqual(len(STATIC_PODS), 6)
        self.assertEqual(len(UNITS), 6)

    def all_manifests(self):
        for p in STATIC_PODS:
            yield p, pod_serve_args(p), POD_INSTALL_PATH
        for u in UNITS:
            yield u, unit_exec_start(u), UNIT_INSTALL_PATH

    def test_every_flag_of_every_manifest_is_one_serve_accepts(self):
        n = 0
        for path, args, _ in self.all_manifests():
            for flag, _ in split_flags(args):
                self.assertIn(flag, self.serve_flags, f"{rel(path)}: {flag} is not a serve flag")
                n += 1
        self.assertGreater(n, 30)

    def test_the_backend_of_each_manifest_is_the_one_its_directory_names(self):
        expected = {"": "aws", "vault": "vault", "pkcs11": "pkcs11", "gcp": "gcp", "azure": "azure",
                    "local-single-node": "local"}
        for path, args, _ in self.all_manifests():
            variant = os.path.relpath(os.path.dirname(path), DEPLOY).replace(".", "")
            self.assertEqual(dict(split_flags(args))["--kms"], expected[variant], rel(path))

    def test_every_manifest_holds_a_placeholder_and_the_binary_refuses_it_naming_the_file(self):
        for path, args, install_path in self.all_manifests():
            placeholders = [f for f, v in split_flags(args) if v and "REPLACE_ME" in v]
            self.assertTrue(placeholders, f"{rel(path)} has no REPLACE_ME flag value")
            if path.endswith(".yaml"):
                env = {e["name"]: e["value"] for e in pod_container(path)[1].get("env", [])}
            else:
                env = dict(v.split("=", 1) for k, v in unit_sections(path)["Service"]
                           if k == "Environment")
            self.assertEqual(env.get("KMS_PLUGIN_MANIFEST"), install_path, rel(path))
            self.assertIn(install_path, read(path), f"{rel(path)} says where to install it")
            with tempfile.TemporaryDirectory() as tmp:
                run = subprocess.run([BINARY, "serve"] + args, capture_output=True, text=True,
                                     timeout=30, cwd=tmp,
                                     env=dict(os.environ, **env))
            self.assertEqual(run.returncode, 2, f"{rel(path)}: {run.stderr}")
            self.assertIn(f"{placeholders[0]} still holds the placeholder REPLACE_ME",
                          run.stderr, rel(path))
            self.assertIn(f"edit {install_path} and put the real value there", run.stderr)

    def test_the_local_keyring_variant_is_marked_single_node_and_pins_the_keyring_id(self):
        for path in glob.glob(os.path.join(DEPLOY, "local-single-node", "*")):
            text = read(path)
            self.assertIn("SINGLE-NODE ONLY", text, rel(path))
            args = pod_serve_args(path) if path.endswith(".yaml") else unit_exec_start(path)
            flags = dict(split_flags(args))
            self.assertIn("REPLACE_ME", flags["--local-keyring-id"])
            self.assertNotIn("--local-keyring-create", flags, rel(path))
        # No other manifest uses the local keyring.
        for path, args, _ in self.all_manifests():
            if "local-single-node" not in path:
                self.assertNotEqual(dict(split_flags(args))["--kms"], "local", rel(path))

    def test_listen_health_and_volumes_agree_with_the_encryption_config(self):
        endpoint = kms_endpoint()
        sock_dir = posixpath.dirname(socket_path(endpoint))
        for path, args, _ in self.all_manifests():
            flags = dict(split_flags(args))
            self.assertEqual(flags["--listen"], endpoint, rel(path))
        for path in STATIC_PODS:
            doc, c = pod_container(path)
            flags = dict(split_flags(pod_serve_args(path)))
            host, port = flags["--health-addr"].rsplit(":", 1)
            for probe in ("livenessProbe", "readinessProbe"):
                get = c[probe]["httpGet"]
                self.assertEqual(str(get["port"]), port, f"{rel(path)} {probe}")
                self.assertEqual(get["host"], host, f"{rel(path)} {probe}")
            volumes = {v["name"]: v for v in doc["spec"]["volumes"]}
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            self.assertIn(sock_dir, mounts, f"{rel(path)} mounts the socket directory")
            self.assertEqual(volumes[mounts[sock_dir]["name"]]["hostPath"]["path"], sock_dir)
            self.assertTrue(doc["spec"]["hostNetwork"], "the probes dial 127.0.0.1 on the host")
            sc = c["securityContext"]
            self.assertFalse(sc["allowPrivilegeEscalation"])
            self.assertTrue(sc["readOnlyRootFilesystem"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
            # Every host file a flag names is inside a mounted host directory.
            for flag, value in flags.items():
                if value and value.startswith("/") and flag != "--listen":
                    self.assertTrue(any(value.startswith(m + "/") for m in mounts),
                                    f"{rel(path)}: {flag}={value} is not under a volume mount")
        for path in UNITS:
            service = dict(unit_sections(path)["Service"])
            self.assertEqual("/run/" + service["RuntimeDirectory"],
                             sock_dir.replace("/var/run/", "/run/"), rel(path))


class KubeadmTest(unittest.TestCase):
    """deploy/kubeadm/cluster-configuration.yaml, copied into a fresh file and parsed."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        copy = os.path.join(self.tmp, "cluster-configuration.yaml")
        shutil.copy(os.path.join(DEPLOY, "kubeadm", "cluster-configuration.yaml"), copy)
        self.cfg = yaml.safe_load(read(copy))

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_its_paths_match_the_encryption_config_and_the_socket_directory(self):
        self.assertEqual(self.cfg["apiVersion"], "kubeadm.k8s.io/v1beta3")
        self.assertEqual(self.cfg["kind"], "ClusterConfiguration")
        api = self.cfg["apiServer"]
        config_path = api["extraArgs"]["encryption-provider-config"]
        # The EncryptionConfiguration's own header names the same path.
        self.assertIn(f"--encryption-provider-config={config_path}",
                      read(os.path.join(DEPLOY, "encryption-config.yaml")))
        self.assertIn(api["extraArgs"].get("encryption-provider-config-automatic-reload"),
                      ("true", None))
        volumes = {v["mountPath"]: v for v in api["extraVolumes"]}
        config_dir = posixpath.dirname(config_path)
        self.assertIn(config_dir, volumes)
        self.assertEqual(volumes[config_dir]["hostPath"], config_dir)
        self.assertTrue(volumes[config_dir]["readOnly"])
        sock_dir = posixpath.dirname(socket_path(kms_endpoint()))
        self.assertIn(sock_dir, volumes, "kube-apiserver must see the plugin's socket directory")
        self.assertEqual(volumes[sock_dir]["hostPath"], sock_dir)
        self.assertFalse(volumes[sock_dir].get("readOnly", False))
        for path in STATIC_PODS:
            doc, _ = pod_container(path)
            host_dirs = [v["hostPath"]["path"] for v in doc["spec"]["volumes"]]
            self.assertIn(sock_dir, host_dirs, rel(path))

    def test_every_extra_arg_is_a_string_and_every_volume_is_complete(self):
        api = self.cfg["apiServer"]
        for k, v in api["extraArgs"].items():
            self.assertIsInstance(v, str, f"extraArgs.{k}: kubeadm v1beta3 wants strings")
        for v in api["extraVolumes"]:
            self.assertEqual(set(v) - {"name", "hostPath", "mountPath", "readOnly", "pathType"},
                             set(), v)
            self.assertTrue(v["name"] and v["hostPath"].startswith("/") and
                            v["mountPath"].startswith("/"), v)


SANDBOXING = {
    "NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true",
    "PrivateTmp": "true", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
    "ProtectKernelTunables": "true", "ProtectKernelModules": "true",
    "ProtectKernelLogs": "true", "ProtectControlGroups": "true", "RestrictNamespaces": "true",
    "RestrictSUIDSGID": "true", "LockPersonality": "true", "MemoryDenyWriteExecute": "true",
    "SystemCallArchitectures": "native", "SystemCallFilter": "@system-service",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK", "UMask": "0077",
    "LimitCORE": "0",
}


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze (package systemd) missing")
class SystemdUnitTest(unittest.TestCase):
    """Each unit passes `systemd-analyze verify` and keeps its sandboxing."""

    def verify(self, unit_text):
        """Runs systemd-analyze verify on a copy whose ExecStart names the built binary."""
        with tempfile.TemporaryDirectory() as tmp:
            text = unit_text.replace("/usr/local/bin/kms-plugin", os.path.abspath(BINARY))
            path = os.path.join(tmp, "kms-plugin.service")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            run = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                                 capture_output=True, text=True, timeout=60)
        # kubelet.service (Before=) need not exist here; anything else is a finding.
        findings = [line for line in (run.stdout + run.stderr).splitlines()
                    if line.strip() and "kubelet.service" not in line]
        return run.returncode, findings

    def test_every_unit_passes_systemd_analyze_verify(self):
        for path in UNITS:
            code, findings = self.verify(read(path))
            self.assertEqual((code, findings), (0, []), rel(path))

    def test_a_broken_unit_fails_the_check(self):
        # The check can fail: a bad directive value and a missing binary are both reported.
        base = read(UNITS[0])
        code, findings = self.verify(base.replace("ProtectSystem=strict", "ProtectSystem=bogus"))
        self.assertTrue(code != 0 or findings, "a bad ProtectSystem= passed")
        code, findings = self.verify(base.replace("/usr/local/bin/kms-plugin",
                                                  "/nonexistent/kms-plugin"))
        self.assertTrue(code != 0 or findings, "a missing ExecStart binary passed")

    def test_every_unit_keeps_its_sandboxing(self):
        for path in UNITS:
            service = dict(unit_sections(path)["Service"])
            for key, value in SANDBOXING.items():
                self.assertEqual(service.get(key), value, f"{rel(path)}: {key}")
            if "pkcs11" not in path:  # A USB or PCI token is a device node.
                self.assertEqual(service.get("PrivateDevices"), "true", rel(path))
            self.assertEqual(service.get("RuntimeDirectoryMode"), "0700", rel(path))


def dockerfile_stages():
    """[(from_line, [(instruction, args)])] of ./Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", read(os.path.join(REPO, "Dockerfile")))
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stages.append((args.strip(), []))
        else:
            stages[-1][1].append((instr, re.sub(r"\s+", " ", args.strip())))
    return stages


def dev_sh_function(name):
    """The body of a shell function in scripts/dev.sh."""
    text = read(os.path.join(REPO, "scripts", "dev.sh"))
    m = re.search(r"^" + name + r"\(\) \{\n(.*?)^\}", text, re.M | re.S)
    assert m, f"no function {name} in scripts/dev.sh"
    return m.group(1)


class DockerfileTest(unittest.TestCase):
    """./Dockerfile cannot be built here; its parts are checked against what CI and ldd say.

    The rule for the build stage: it starts from debian:12 (the machine CI runs on) and every RUN
    is `scripts/dev.sh <subcommand>`, a subcommand the script dispatches; no inline apt-get or
    cmake. `deps` is the very step CI runs (.ci/run -> `scripts/dev.sh test` -> each default
    TEST_STEPS step calls deps), so the image is built with CI's package list; the compile is
    `release`, which calls the same deps and configures the same CMake project, and the binary the
    runtime stage copies is the one `release` builds.
    """

    def setUp(self):
        self.stages = dockerfile_stages()
        self.assertEqual(len(self.stages), 2, "a build stage and a runtime stage")

    def test_the_build_stage_runs_only_the_commands_ci_runs(self):
        base, steps = self.stages[0]
        self.assertEqual(base, "debian:12 AS build")
        runs = [args for instr, args in steps if instr == "RUN"]
        self.assertEqual(runs, ["scripts/dev.sh deps", "scripts/dev.sh release"])
        dev = read(os.path.join(REPO, "scripts", "dev.sh"))
        dispatch = re.search(r'^case "\$\{1:-\}" in\n(.*?)^esac', dev, re.M | re.S).group(1)
        for run in runs:
            sub = run.split()[1]
            self.assertRegex(dispatch, r"(?m)^\s+" + sub + r"\) ",
                             f"dev.sh has no {sub} subcommand")
        # CI's entry point runs `scripts/dev.sh test`; test_all's default steps each call deps.
        ci = read(os.path.join(REPO, ".ci", "run"))
        self.assertRegex(ci, r"(?m)^exec scripts/dev\.sh test$")
        test_all = dev_sh_function("test_all")
        steps_default = re.search(r"TEST_STEPS:-([a-z ]+)\}", test_all).group(1).split()
        self.assertTrue(steps_default)
        for step in steps_default:
            body = dev_sh_function(step)
            self.assertRegex(body, r"(?m)^\s+deps$", f"CI step {step} does not run deps")
        release = dev_sh_function("release")
        self.assertRegex(release, r"(?m)^\s+deps$")
        self.assertIn("cmake -S . -B", release)
        self.assertIn("--target kms-plugin", release)
        dir_default = re.search(r"RELEASE_BUILD_DIR:-([\w.-]+)\}", release).group(1)
        copies = [args for instr, args in self.stages[1][1] if instr == "COPY"]
        self.assertEqual(copies, [f"--from=build /src/{dir_default}/kms-plugin "
                                  "/usr/local/bin/kms-plugin"])
        workdir = [args for instr, args in steps if instr == "WORKDIR"]
        self.assertEqual(workdir, ["/src"])

    def test_the_runtime_stage_runs_as_a_numeric_non_root_user_with_only_the_binary(self):
        base, steps = self.stages[1]
        self.assertEqual(base, "debian:12-slim")
        users = [args for instr, args in steps if instr == "USER"]
        self.assertEqual(len(users), 1)
        uid, _, gid = users[0].partition(":")
        self.assertTrue(uid.isdigit() and int(uid) != 0, users[0])
        self.assertTrue(not gid or (gid.isdigit() and int(gid) != 0), users[0])
        self.assertEqual([i for i, _ in steps if i in ("COPY", "ADD")], ["COPY"])
        self.assertEqual(steps[-1][0], "CMD")
        self.assertIn(("ENTRYPOINT", '["/usr/local/bin/kms-plugin"]'), steps)

    def runtime_packages(self):
        runs = [args for instr, args in self.stages[1][1] if instr == "RUN"]
        self.assertEqual(len(runs), 1)
        m = re.search(r"apt-get install -y --no-install-recommends ([a-z0-9.+\- ]+?)(?: &&|$)",
                      runs[0])
        self.assertTrue(m, runs[0])
        return set(m.group(1).split())

    @staticmethod
    def packages_of(paths):
        """The Debian package owning each library path (through /usr-merge symlinks too), with
        one dpkg -S call."""
        candidates = {}
        for path in paths:
            real = os.path.realpath(path)
            candidates[path] = [real, path, re.sub(r"^/usr/lib/", "/lib/", real),
                                re.sub(r"^/lib/", "/usr/lib/", path)]
        run = subprocess.run(["dpkg", "-S"] + sorted({c for cs in candidates.values() for c in cs}),
                             capture_output=True, text=True)
        owner = {}
        for line in run.stdout.splitlines():
            pkg, _, file = line.partition(": ")
            owner[file.strip()] = pkg.split(":")[0].strip()
        result = set()
        for path, cs in candidates.items():
            found = [owner[c] for c in cs if c in owner]
            if not found:
                raise AssertionError(f"no package owns {path}")
            result.add(found[0])
        return result

    def test_the_runtime_stage_installs_every_library_the_binary_links_or_loads(self):
        # In debian:12-slim already: apt is in every Debian image and depends on these.
        base_set = {"libc6", "libgcc-s1", "libstdc++6"}
        apt_depends = subprocess.run(["dpkg-query", "-W", "-f=${Depends}", "apt"],
                                     capture_output=True, text=True, check=True).stdout
        for p in base_set:
            self.assertRegex(apt_depends, r"(^|, )" + re.escape(p) + r"[ ,(]|" + re.escape(p) + "$")
        ldd = subprocess.run(["ldd", BINARY], capture_output=True, text=True, check=True).stdout
        libs = re.findall(r"=> (/\S+) \(", ldd)
        self.assertGreater(len(libs), 10, ldd)
        # Libraries loaded with dlopen() by soname, which ldd cannot see (libcurl.so.4).
        sonames = set()
        for src in glob.glob(os.path.join(REPO, "kms", "**", "*.cc"), recursive=True):
            sonames |= set(re.findall(r'"(lib[A-Za-z0-9_+-]+\.so\.\d+)"', read(src)))
        self.assertIn("libcurl.so.4", sonames)
        cache = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True,
                               check=True).stdout
        for soname in sonames:
            m = re.search(r"^\s+" + re.escape(soname) + r" \(libc6,x86-64\) => (\S+)", cache, re.M)
            self.assertTrue(m, f"{soname} is not installed here")
            libs.append(m.group(1))
        needed = self.packages_of(libs)
        self.assertIn("libcurl4", needed)
        listed = self.runtime_packages()
        missing = sorted(needed - listed - base_set)
        self.assertEqual(missing, [], "runtime stage lacks these packages")
        # Nothing needless: every listed package is needed, or ca-certificates for TLS.
        self.assertEqual(sorted(listed - needed - {"ca-certificates"}), [])


if __name__ == "__main__":
    unittest.main()
