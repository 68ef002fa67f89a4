// Records llama.cpp's tokenizer output for the golden files next to this source.
// Build and run through record.sh. usage: tok MODEL CASES OUT
//   CASES: one case per line, "<add_special><parse_special>\t<text as hex>"
//   OUT:   a "# meta" line, then per case "<flags>\t<text hex>\t<ids>\t<detokenized hex>"
//          (detokenized: llama_detokenize with remove_special = false, unparse_special = true)
#include "llama.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

static std::string from_hex(const std::string & h) {
    std::string s;
    for (size_t i = 0; i + 1 < h.size(); i += 2) {
        s.push_back((char) std::stoi(h.substr(i, 2), nullptr, 16));
    }
    return s;
}

static std::string to_hex(const std::string & s) {
    static const char * digits = "0123456789abcdef";
    std::string h;
    for (unsigned char c : s) {
        h.push_back(digits[c >> 4]);
        h.push_back(digits[c & 15]);
    }
    return h;
}

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL CASES OUT\n", argv[0]);
        return 1;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    auto params = llama_model_default_params();
    params.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], params);
    if (!model) {
        fprintf(stderr, "%s: load failed\n", argv[1]);
        return 2;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    std::ifstream in(argv[2]);
    std::ofstream out(argv[3]);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    out << "# meta n_vocab=" << n_vocab << " bos=" << llama_vocab_bos(vocab) << " eos=" << llama_vocab_eos(vocab)
        << " add_bos=" << llama_vocab_get_add_bos(vocab) << " add_eos=" << llama_vocab_get_add_eos(vocab) << " eog=";
    for (int id = 0; id < n_vocab; id++) {
        if (llama_vocab_is_eog(vocab, id)) {
            out << id << ",";
        }
    }
    out << "\n";
    std::string line;
    while (std::getline(in, line)) {
        const bool add_special = line[0] == '1';
        const bool parse_special = line[1] == '1';
        const std::string text = from_hex(line.substr(3));
        std::vector<llama_token> ids(text.size() * 2 + 16);
        int n = llama_tokenize(vocab, text.data(), text.size(), ids.data(), ids.size(), add_special, parse_special);
        if (n < 0) {
            ids.resize(-n);
            n = llama_tokenize(vocab, text.data(), text.size(), ids.data(), ids.size(), add_special, parse_special);
        }
        ids.resize(n);
        std::string detok(ids.size() * 16 + 16, '\0');
        int m = llama_detokenize(vocab, ids.data(), ids.size(), &detok[0], detok.size(), false, true);
        if (m < 0) {
            detok.resize(-m);
            m = llama_detokenize(vocab, ids.data(), ids.size(), &detok[0], detok.size(), false, true);
        }
        detok.resize(m);
        out << line.substr(0, 2) << "\t" << line.substr(3) << "\t";
        for (size_t i = 0; i < ids.size(); i++) {
            out << (i ? " " : "") << ids[i];
        }
        out << "\t" << to_hex(detok) << "\n";
    }
    llama_model_free(model);
    return 0;
}
