"""Tests scripts/function-lengths on small generated sources: it must find a
long function wherever clang-formatted C++ can hide its braces, and must not
take tables, classes or initialisers for functions."""

import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "scripts", "function-lengths")


def body(lines):
    return "".join(f"  x += {i};\n" for i in range(lines))


class FunctionLengthsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_checker(self, *args):
        result = subprocess.run(
            [sys.executable, SCRIPT, "--max", "10", *args],
            capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout, result.stderr

    def test_reports_a_long_function_and_fails(self):
        self.write("a.cpp", "namespace n {\nint Long(int x) {\n" + body(12) +
                   "  return x;\n}\n}  // namespace n\n")
        rc, out, _ = self.run_checker(self.dir.name)
        self.assertEqual(rc, 1)
        # From the name's line to the closing brace: 1 + 12 + 1 + 1.
        self.assertIn("a.cpp:2: Long 15 lines", out)

    def test_short_functions_pass(self):
        self.write("a.cpp", "int Short(int x) {\n" + body(5) + "  return x;\n}\n")
        rc, out, _ = self.run_checker(self.dir.name)
        self.assertEqual((rc, out), (0, ""))

    def test_braces_in_literals_and_comments_do_not_count(self):
        text = ("int Tricky(int x) {\n"
                "  const char* s = \"}}}\";\n"
                "  char c = '}';\n"
                "  // }\n"
                "  /* } */\n"
                "  const char* r = R\"x(})\")x\";\n"
                "  int m = 1'000;\n" + body(8) + "  return x;\n}\n")
        self.write("a.cpp", text)
        rc, out, _ = self.run_checker(self.dir.name)
        self.assertEqual(rc, 1)
        self.assertIn("Tricky 17 lines", out)

    def test_members_constructors_and_lambdas(self):
        text = ("class C {\n public:\n"
                "  C(int a) : a_(a), b_{a} {\n" + body(11) + "  }\n"
                "  int Get() const {\n"
                "    auto f = [this]() {\n" + body(11) + "    };\n"
                "    return f();\n  }\n"
                " private:\n  int a_;\n  int b_;\n};\n")
        self.write("c.h", text)
        rc, out, _ = self.run_checker("--all", self.dir.name)
        self.assertEqual(rc, 1)
        self.assertIn("c.h:3: C 13 lines", out)
        self.assertIn("c.h:16: Get 16 lines", out)

    def test_tables_and_enums_are_not_functions(self):
        rows = "".join(f"    {{\"k{i}\", {i}}},\n" for i in range(20))
        text = ("#define M(x) { x }\n"
                "enum class E : int {\n" + "".join(
                    f"  k{i},\n" for i in range(20)) + "};\n"
                "struct Row {\n  const char* k;\n  int v;\n};\n"
                "const Row kRows[] = {\n" + rows + "};\n"
                "extern \"C\" {\nint F(void) { return 0; }\n}\n")
        self.write("t.cpp", text)
        rc, out, _ = self.run_checker("--all", self.dir.name)
        self.assertEqual(rc, 0, out)
        # Only the function inside extern "C" is one.
        self.assertEqual(out.splitlines(),
                         [os.path.join(self.dir.name, "t.cpp") + ":51: F 1 lines"])

    def test_allow_list_lets_a_named_function_through(self):
        self.write("a.cpp", "int Table(int x) {\n" + body(12) + "  return x;\n}\n")
        allow = self.write("allow", "# why\na.cpp:Table  # a flat table\n")
        rc, out, _ = self.run_checker("--allow", allow, self.dir.name)
        self.assertEqual(rc, 0)
        self.assertIn("Table 15 lines (on the allow-list)", out)

    def test_stale_allow_list_entry_fails(self):
        self.write("a.cpp", "int Short(int x) {\n  return x;\n}\n")
        allow = self.write("allow", "a.cpp:Gone\n")
        rc, _, err = self.run_checker("--allow", allow, self.dir.name)
        self.assertEqual(rc, 1)
        self.assertIn("a.cpp:Gone matches no function", err)

    def test_missing_path_is_one_error(self):
        rc, out, err = self.run_checker(os.path.join(self.dir.name, "nope"))
        self.assertEqual(rc, 2)
        self.assertEqual(out, "")
        self.assertEqual(len(err.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
