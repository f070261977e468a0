"""Issue 13: docs/operations.md, tried as a new user would, is checked against the real thing.

- every `kms-plugin ...` command in a fenced shell block (and in inline code) names a real
  subcommand and only flags that subcommand's --help lists (asks the built binary);
- every yaml block parses, every json block parses;
- every kms_plugin_* metric named is one plugin/metrics.cc registers (read from the source, so the
  test fails until a documented metric exists);
- every plugin message quoted in the troubleshooting table appears in the sources;
- every relative link resolves (files, and #anchors to headings), and the README links the guide;
- it has a section for each topic issue 13 lists;
- its audit-log examples have exactly the fields plugin/audit_log.cc writes, in that order.

Run by ctest (tests/deploy/CMakeLists.txt) as
  KMS_PLUGIN_BINARY=build/kms-plugin /usr/bin/python3 -m unittest -v docs_test
"""

import glob
import json
import os
import re
import shlex
import subprocess
import unittest

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("KMS_PLUGIN_BINARY", os.path.join(REPO, "build", "kms-plugin"))
GUIDE = os.path.join(REPO, "docs", "operations.md")
SOURCE_DIRS = ["base", "crypto", "kms", "plugin", "tools", "cmd"]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def fenced_blocks(text):
    """[(language, body)] of the ``` blocks (indented ones too)."""
    return [(m.group(2), re.sub(r"(?m)^" + m.group(1), "", m.group(3)))
            for m in re.finditer(r"(?ms)^( *)```(\w*)\n(.*?)^\1```", text)]


_help_cache = {}


def help_text(subcommand):
    if subcommand not in _help_cache:
        argv = [BINARY] + ([subcommand] if subcommand else []) + ["--help"]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        _help_cache[subcommand] = (run.returncode, run.stdout + run.stderr)
    return _help_cache[subcommand]


def subcommands():
    code, out = help_text("")
    assert code == 0, out
    section = re.split(r"(?i)^subcommands:", out, maxsplit=1, flags=re.M)[1]
    return set(re.findall(r"^\s+([a-z][a-z0-9-]*)\s", section, re.M))


def flags_of(subcommand):
    code, out = help_text(subcommand)
    assert code == 0, out
    return set(re.findall(r"^\s+(?:-\w,\s*)?(--[a-z0-9][a-z0-9-]*)", out, re.M))


def shell_commands(body):
    """The simple commands of a shell block: continuations joined, comments and operators split."""
    body = re.sub(r"\\\n", " ", body)
    commands = []
    for line in body.splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            tokens = line.split()
        current = []
        for t in tokens:
            if t in ("&&", "||", "|", ";", "&"):
                commands.append(current)
                current = []
            else:
                current.append(t)
        commands.append(current)
    return [c for c in commands if c]


def kms_plugin_invocation(tokens):
    """The tokens after `kms-plugin` (or a path to it) in command position, or None."""
    i = 0
    if tokens[0] == "timeout":  # timeout [-s SIG] DURATION command...
        i = 3 if tokens[1] == "-s" else 1
        i += 1
    elif tokens[0] in ("sudo", "exec"):
        i = 1
    if i < len(tokens) and (tokens[i] == "kms-plugin" or tokens[i].endswith("/kms-plugin")):
        return tokens[i + 1:]
    return None


class GuideTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = read(GUIDE)
        cls.blocks = fenced_blocks(cls.text)

    def check_invocation(self, args, where, unknown):
        """Counts the flags of one invocation; appends what the binary does not know to unknown."""
        self.assertTrue(args, f"{where}: bare kms-plugin")
        if args[0] in ("--version", "--help", "--help-all"):
            return 0
        if args[0] not in subcommands():
            unknown.append(f"no subcommand {args[0]} ({where})")
            return 0
        known = flags_of(args[0])
        n = 0
        for a in args[1:]:
            if a.startswith("--"):
                flag = a.split("=", 1)[0]
                if flag not in known:
                    unknown.append(f"`kms-plugin {args[0]}` has no {flag}")
                n += 1
        return n

    def test_every_fenced_kms_plugin_command_uses_real_subcommands_and_flags(self):
        commands = flags = 0
        unknown = []
        for lang, body in self.blocks:
            if lang not in ("sh", "bash", "console", ""):
                continue
            for tokens in shell_commands(body):
                args = kms_plugin_invocation(tokens)
                if args is None:
                    continue
                flags += self.check_invocation(args, " ".join(tokens)[:80], unknown)
                commands += 1
        self.assertEqual(unknown, [])
        self.assertGreaterEqual(commands, 7)
        self.assertGreaterEqual(flags, 20)

    def test_inline_kms_plugin_commands_use_real_subcommands_and_flags(self):
        n = 0
        unknown = []
        for code in re.findall(r"`(kms-plugin [^`]+)`", self.text):
            tokens = [t for t in code.split() if "…" not in t and "<" not in t]
            if len(tokens) < 2:
                continue
            self.check_invocation(tokens[1:], code, unknown)
            n += 1
        self.assertEqual(unknown, [])
        self.assertGreaterEqual(n, 5)

    def test_every_yaml_and_json_block_parses(self):
        yaml_blocks = json_blocks = 0
        for lang, body in self.blocks:
            if lang == "yaml":
                docs = list(yaml.safe_load_all(body))
                self.assertTrue(docs and all(isinstance(d, dict) for d in docs), body[:200])
                yaml_blocks += 1
            elif lang == "json":
                for line in body.splitlines():
                    json.loads(line)
                json_blocks += 1
        self.assertGreaterEqual(yaml_blocks, 2)
        self.assertGreaterEqual(json_blocks, 1)

    def test_the_yaml_blocks_quote_the_deploy_files_exactly(self):
        # The guide shows the kubeadm file and the encryption config: they must be those files.
        bodies = [yaml.safe_load(b) for lang, b in self.blocks if lang == "yaml"]
        for path in ("deploy/kubeadm/cluster-configuration.yaml", "deploy/encryption-config.yaml"):
            self.assertIn(yaml.safe_load(read(os.path.join(REPO, path))), bodies, path)

    def test_every_metric_named_is_registered_by_the_plugin(self):
        source = read(os.path.join(REPO, "plugin", "metrics.cc"))
        registered = set(re.findall(r'"(kms_plugin_[a-z0-9_]+)"', source))
        self.assertTrue(registered)
        named = set(re.findall(r"\b(kms_plugin_[a-z0-9_]+)", self.text))
        self.assertGreaterEqual(len(named), 18)
        self.assertEqual(sorted(named - registered), [],
                         "documented but not registered in plugin/metrics.cc")

    def test_every_plugin_message_in_the_troubleshooting_table_is_in_the_sources(self):
        sources = []
        for d in SOURCE_DIRS:
            for path in glob.glob(os.path.join(REPO, d, "**", "*.*"), recursive=True):
                if path.endswith((".cc", ".h")):
                    sources.append(read(path))
        # Adjacent string literals ("abc "\n  "def") are one message.
        joined = re.sub(r'"\s*\n\s*"', "", "\n".join(sources))
        table = self.text.split("### Messages from the plugin", 1)[1].split("\n### ", 1)[0]
        rows = [line for line in table.splitlines() if line.startswith("| `")]
        self.assertGreaterEqual(len(rows), 25)
        missing = []
        for row in rows:
            first_cell = row.split(" | ", 1)[0]
            for quoted in re.findall(r"`([^`]+)`", first_cell):
                for piece in quoted.split("…"):
                    piece = piece.strip()
                    if len(piece) >= 6 and piece not in joined:
                        missing.append(piece)
        self.assertEqual(missing, [], "quoted in the table but not in the sources")

    def test_every_relative_link_resolves(self):
        headings = {self.slug(h) for h in re.findall(r"(?m)^#+ (.+)$", self.text)}
        links = re.findall(r"\]\(([^)\s]+)\)", self.text)
        self.assertGreaterEqual(len(links), 15)
        for link in links:
            if re.match(r"^[a-z]+:", link):
                continue
            path, _, anchor = link.partition("#")
            if path:
                target = os.path.normpath(os.path.join(os.path.dirname(GUIDE), path))
                self.assertTrue(os.path.exists(target), f"broken link {link}")
            elif anchor:
                self.assertIn(anchor, headings, f"no heading for #{anchor}")

    @staticmethod
    def slug(heading):
        s = heading.strip().lower()
        s = re.sub(r"[^\w\- ]", "", s)
        return s.replace(" ", "-")

    def test_the_guide_has_every_section_an_operator_needs(self):
        # Issue 13's list, in the guide's own headings.
        headings = [h.lower() for h in re.findall(r"(?m)^#+ (.+)$", self.text)]
        for needed in ("install on kubeadm", "install with systemd", "first start",
                       "rotation and re-encryption", "unreachable", "disabled",
                       "reading the metrics", "reading the audit log", "upgrading",
                       "troubleshooting", "messages from the plugin",
                       "messages from kube-apiserver", "fips"):
            self.assertTrue(any(needed in h for h in headings), f"no section on {needed}")

    def test_the_audit_examples_have_exactly_the_fields_the_plugin_writes_in_order(self):
        # The field names and order come from plugin/audit_log.cc (j["field"] = ... in OnAttempt
        # and RecordAdmin), so a renamed, added or dropped field fails here until the guide says so.
        source = read(os.path.join(REPO, "plugin", "audit_log.cc"))
        writers = {}
        for kind, fn in (("kms_request", "OnAttempt"), ("admin", "RecordAdmin")):
            body = source.split(f"AuditLog::{fn}(", 1)[1].split("\n}\n", 1)[0]
            writers[kind] = re.findall(r'j\["([a-z_]+)"\]', body)
            self.assertGreaterEqual(len(writers[kind]), 9, kind)
        examples = {}
        for lang, body in self.blocks:
            if lang != "json":
                continue
            for line in body.splitlines():
                if line.startswith("{"):
                    obj = json.loads(line)
                    if obj.get("type") in writers:
                        examples[obj["type"]] = list(obj.keys())
        self.assertEqual(examples, writers)

    def test_the_readme_links_the_guide(self):
        self.assertIn("](docs/operations.md)", read(os.path.join(REPO, "README.md")))


if __name__ == "__main__":
    unittest.main()
