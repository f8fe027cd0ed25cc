# glmer fit of smoking ~ type, three levels (docs/meta_regression.md). Make the CSV first:
#   python -c "import bayesdta as bd; bd.load_example(\"smoking\").frame.to_csv(\"/tmp/smoking.csv\", index=False)"
# then: Rscript validation/glmer_smoking_type.R
suppressMessages(library(lme4))
d <- read.csv("/tmp/smoking.csv"); d$row <- seq_len(nrow(d)); d$type <- relevel(factor(d$type), "IAQ")
a <- d; a$y <- a$TP; a$n <- a$TP + a$FN; a$se <- 1; a$sp <- 0
b <- d; b$y <- b$TN; b$n <- b$TN + b$FP; b$se <- 0; b$sp <- 1
l <- rbind(a, b); l$seSAQ <- l$se * (l$type == "SAQ"); l$spSAQ <- l$sp * (l$type == "SAQ")
m <- glmer(cbind(y, n - y) ~ 0 + se + sp + seSAQ + spSAQ + (0 + se + sp | study) + (0 + se + sp | row), data = l, family = binomial, control = glmerControl(optimizer = "bobyqa"))
print(fixef(m)); print(VarCorr(m), comp = "Std.Dev.")
