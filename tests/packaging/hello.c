/* The size budget's statically linked hello-world: the smallest real use of the C ABI. */
#include <stdio.h>
#include "heartbeater.h"

int main(void) {
  printf("heartbeater %s\n", hb_version());
  return 0;
}
