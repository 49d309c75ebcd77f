# Source this after setting the defaults of a script's options:
#   . utils/parse_options.sh || exit 1
# Kaldi's semantics: options come first, as "--name value" (never --name=value); "--name" sets the
# shell variable "name" with "-" read as "_"; the variable must already have a default (an unknown
# option is an error); an option whose default is true/false only takes true or false;
# --help prints $help_message; "--config FILE" reads "name=value" lines (# comments allowed).
# Unlike Kaldi's, --config reads the file as data: it is never run as shell code.

_po_die() { echo "$0: $*" >&2; exit 1; }

_po_set() {  # name value origin; its locals are prefixed: an option may be called --name or --value
  local _po_var=${1//-/_} _po_value=$2 _po_origin=$3 _po_old
  [[ $_po_var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || _po_die "invalid option name '$1' ($_po_origin)"
  [[ $_po_var != _po_* ]] && [[ -v $_po_var ]] || _po_die "invalid option --$1 ($_po_origin)"
  _po_old=${!_po_var}
  if [[ $_po_old == true || $_po_old == false ]] && [[ $_po_value != true && $_po_value != false ]]; then
    _po_die "expected \"true\" or \"false\": --$1 $_po_value ($_po_origin)"
  fi
  printf -v "$_po_var" '%s' "$_po_value"
}

_po_config() {  # file
  local _po_line _po_lineno=0 _po_key _po_val
  [ -r "$1" ] || _po_die "cannot read config file $1"
  while IFS= read -r _po_line || [ -n "$_po_line" ]; do
    _po_lineno=$((_po_lineno + 1))
    _po_line=${_po_line%%#*}
    _po_line=$(printf '%s' "$_po_line" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//')
    [ -z "$_po_line" ] && continue
    _po_line=${_po_line#--}
    [[ $_po_line == *=* ]] || _po_die "$1:$_po_lineno: expected name=value, got '$_po_line'"
    _po_key=${_po_line%%=*}; _po_val=${_po_line#*=}
    _po_val=${_po_val#\"}; _po_val=${_po_val%\"}
    _po_set "$_po_key" "$_po_val" "$1:$_po_lineno"
  done < "$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message" >&2; else echo "No help found." >&2; fi
      exit 0 ;;
    --*=*) _po_die "options to scripts must be of the form --name value, got '$1'" ;;
    --config) [ $# -ge 2 ] || _po_die "--config needs a file"; _po_config "$2"; shift 2 ;;
    --*) [ $# -ge 2 ] || _po_die "option $1 needs a value"; _po_set "${1#--}" "$2" "command line"; shift 2 ;;
    *) break ;;
  esac
done
unset -f _po_die _po_set _po_config
true
